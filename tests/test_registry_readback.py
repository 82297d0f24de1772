"""A manifest PUT the registry acknowledges (201) but does not store is an error, not
"pushed": every manifest and tag is read back after its PUT. Against a real docker-registry
behind a proxy that drops PUTs while answering 201."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from layerforge.layout.oci_layout import OciLayout
from layerforge.model import media_types
from layerforge.model.index import Index
from tests.push_support import bounded_push, isolate, multi_layer_image, one_error_line
from tests.registry_support import FaultProxy, Registry, Rule


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path)


@pytest.mark.parametrize("dropped", [r"/manifests/sha256:", r"/manifests/1$", r"/manifests/"])
def test_an_acknowledged_manifest_put_is_read_back(
    tmp_path: Path, registry: Registry, proxy: FaultProxy, dropped: str
) -> None:
    src = multi_layer_image(tmp_path, layers=1)
    # An index, so that a child manifest is PUT by digest before the index is PUT by tag.
    layout = OciLayout.open(src)
    child = dataclasses.replace(layout.resolve("v1"), annotations={})
    with layout.locked():
        layout.tag(layout.put_json(Index(manifests=(child,)).to_json(), media_types.IMAGE_INDEX), "multi")
    proxy.rules.append(Rule("drop-put", method="PUT", path=dropped))
    proc = bounded_push(f"{src}:multi", f"{proxy.host}/team/app:1")
    line = one_error_line(proc)
    assert "acknowledged the PUT of manifest team/app:" in line and "holds nothing there" in line, line
    assert "(pushed)" not in proc.stdout
    assert proxy.hostile["drop-put"] == 1
    assert not registry.manifest_exists("team/app", "1")

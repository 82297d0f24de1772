"""`layerforge push` ends, in bounded time and memory, whatever the registry, the layout or
the arguments do: option values that could never finish are usage errors; a registry that
dribbles, stalls or sends an endless body fails the push with one line; blobs are read only
if they are regular files of their descriptor's size; and SIGTERM ends a push that waits on
the network at once, leaving nothing behind. Every wait here is bounded; no test asserts how
long anything took."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import blob_path, image_parts, layerforge_bin, snapshot
from tests.push_support import BOUND, attach_sbom, bounded_push, isolate, multi_layer_image, one_error_line
from tests.registry_support import FaultProxy, Registry, Rule


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path)


def sent_nothing(proxy: FaultProxy) -> bool:
    return not any(kind.startswith(("POST", "PUT", "PATCH")) for kind in proxy.requests) and proxy.body_bytes == 0


# -- arguments that could never finish ---------------------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "needle"),
    [
        (["--chunk-size", "0"], {}, "--chunk-size"),
        (["--chunk-size", "1"], {}, "--chunk-size"),
        (["--chunk-size", "65535"], {}, "--chunk-size"),
        (["--chunk-size", "5GiB"], {}, "--chunk-size"),
        (["--jobs", "100000"], {}, "--jobs"),
        (["--jobs", "0"], {}, "--jobs"),
        (["--jobs", "-1"], {}, "--jobs"),
        (["--retries", "0"], {}, "--retries"),
        (["--retries", "1000000"], {}, "--retries"),
        ([], {"LAYERFORGE_REGISTRY_TIMEOUT": "0"}, "LAYERFORGE_REGISTRY_TIMEOUT"),
        ([], {"LAYERFORGE_REGISTRY_TIMEOUT": "-5"}, "LAYERFORGE_REGISTRY_TIMEOUT"),
        ([], {"LAYERFORGE_REGISTRY_TIMEOUT": "soon"}, "LAYERFORGE_REGISTRY_TIMEOUT"),
        ([], {"LAYERFORGE_REGISTRY_TIMEOUT": "nan"}, "LAYERFORGE_REGISTRY_TIMEOUT"),
    ],
)
def test_unbounded_option_values_are_usage_errors(
    tmp_path: Path, proxy: FaultProxy, args: list[str], env: dict[str, str], needle: str
) -> None:
    src = multi_layer_image(tmp_path, layers=2, size=200_000)
    proc = bounded_push(f"{src}:v1", f"{proxy.host}/team/app:1", *args, env=env)
    assert needle in one_error_line(proc, status=2)
    assert sum(proxy.requests.values()) == 0, "refused before any request"


def test_a_repush_with_bad_options_is_not_answered_natively(tmp_path: Path, proxy: FaultProxy) -> None:
    src = multi_layer_image(tmp_path, layers=2, size=200_000)
    target = f"{proxy.host}/team/app:1"
    assert bounded_push(f"{src}:v1", target).returncode == 0
    assert bounded_push(f"{src}:v1", target).returncode == 0  # nothing to do: answered natively
    for args, env in ((["--jobs", "100000"], {}), ([], {"LAYERFORGE_REGISTRY_TIMEOUT": "0"})):
        proc = bounded_push(f"{src}:v1", target, *args, env=env)
        one_error_line(proc, status=2)
        assert proc.stdout == ""


# -- registries that never finish answering ----------------------------------------------


def test_the_native_command_hands_a_slow_registry_to_python(tmp_path: Path, proxy: FaultProxy) -> None:
    src = multi_layer_image(tmp_path, layers=1)
    target = f"{proxy.host}/team/app:1"
    # The same command line (timeout included) leaves the receipt the native check follows.
    again = ["--retries", "1"]
    assert bounded_push(f"{src}:v1", target, *again, env={"LAYERFORGE_REGISTRY_TIMEOUT": "2"}).returncode == 0
    proxy.rules.append(Rule("dribble", method="HEAD", path=r"/manifests/", interval=0.5))
    proc = bounded_push(f"{src}:v1", target, *again, env={"LAYERFORGE_REGISTRY_TIMEOUT": "2"})
    line = one_error_line(proc)  # Python's answer, after the native check gave up at its deadline
    assert "within 2 s" in line, line
    assert proxy.hostile["dribble"] == 2, "one dribbled answer for each of them"


@pytest.mark.parametrize(
    "hostile",
    [
        {"action": "dribble", "method": "HEAD", "path": r"/manifests/", "interval": 0.5},
        {"action": "stall", "method": "PUT", "path": r"/blobs/uploads/"},
        {"action": "dribble", "method": "PUT", "path": r"/manifests/", "interval": 0.5},
    ],
    ids=["dribbled-answer", "stalled-upload", "dribbled-put-answer"],
)
def test_a_slow_registry_fails_the_push_within_its_deadline(
    tmp_path: Path, proxy: FaultProxy, hostile: dict[str, Any]
) -> None:
    rule = Rule(**hostile)
    # 24 MiB: more than the kernel buffers of a loopback connection, so a stalled upload
    # blocks the sender itself, not only the wait for the answer.
    src = multi_layer_image(tmp_path, layers=1, size=24 << 20)
    proxy.rules.append(rule)
    proc = bounded_push(
        f"{src}:v1", f"{proxy.host}/team/app:1", "--retries", "1", env={"LAYERFORGE_REGISTRY_TIMEOUT": "2"}
    )
    line = one_error_line(proc)
    assert "within" in line and "LAYERFORGE_REGISTRY_TIMEOUT" in line, line
    assert proxy.hostile[rule.action] >= 1


@pytest.mark.parametrize(
    ("rule", "limit"),
    [
        (Rule("endless", method="PUT", path=r"/manifests/"), "64 KiB"),
        (Rule("endless", method="PUT", path=r"/manifests/", framing="chunked"), "64 KiB"),
        (
            Rule("respond", method="PUT", path=r"/manifests/", status=400, headers={"Content-Length": "9" * 12}),
            "64 KiB",
        ),
        (Rule("endless", method="GET", path=r"/referrers/"), "4 MiB"),
        (Rule("endless", method="GET", path=r"/manifests/sha256-"), "4 MiB"),
    ],
    ids=["error-body", "chunked-error-body", "huge-length", "referrers", "referrers-tag"],
)
def test_endless_answers_are_cut_at_their_limit(
    tmp_path: Path, registry: Registry, proxy: FaultProxy, rule: Rule, limit: str
) -> None:
    src = multi_layer_image(tmp_path, layers=1)
    attach_sbom(src)
    proxy.rules.append(rule)
    line = one_error_line(bounded_push(f"{src}:v1", f"{proxy.host}/team/app:1", "--retries", "1"))
    assert f"larger than {limit}" in line, line


# -- blobs that are not what their descriptors say ------------------------------------


def replace_blob(layout: Path, digest: str, kind: str) -> None:
    path = blob_path(layout, digest)
    if kind == "fifo":
        path.unlink()
        os.mkfifo(path)
    elif kind == "dev-zero":
        path.unlink()
        path.symlink_to("/dev/zero")
    elif kind == "longer":
        with open(path, "ab") as f:
            f.write(b"trailing bytes the descriptor does not count")
    elif kind == "shorter":
        os.truncate(path, path.stat().st_size // 2)
    else:
        raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "longer", "shorter"])
@pytest.mark.parametrize("which", ["layer", "manifest"])
def test_blobs_must_be_regular_files_of_their_size(
    tmp_path: Path, registry: Registry, proxy: FaultProxy, kind: str, which: str
) -> None:
    src = multi_layer_image(tmp_path, layers=2)
    entry, manifest, _ = image_parts(src, "v1")
    digest = manifest["layers"][1]["digest"] if which == "layer" else entry["digest"]
    replace_blob(src, digest, kind)
    proc = bounded_push(f"{src}:v1", f"{proxy.host}/team/app:1")
    line = one_error_line(proc)
    assert digest in line, line
    expected = "not a regular file" if kind in ("fifo", "dev-zero") else "its descriptor says"
    assert expected in line, line
    assert sent_nothing(proxy), proxy.requests
    assert not registry.manifest_exists("team/app", "1")


def test_a_repush_checks_blob_sizes_too(tmp_path: Path, proxy: FaultProxy) -> None:
    src = multi_layer_image(tmp_path, layers=2)
    target = f"{proxy.host}/team/app:1"
    assert bounded_push(f"{src}:v1", target).returncode == 0
    layer = image_parts(src, "v1")[1]["layers"][0]["digest"]
    replace_blob(src, layer, "longer")
    assert "its descriptor says" in one_error_line(bounded_push(f"{src}:v1", target))


# -- SIGTERM ends a push that waits on the network ------------------------------------


def wait_for(condition: object, proc: subprocess.Popen[str], what: str) -> None:
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the push ended before {what}: {proc.communicate(timeout=BOUND)}"
        if callable(condition) and condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"no {what} within {BOUND:g} s")


@pytest.mark.parametrize(
    "hostile",
    [
        {"action": "dribble", "method": "HEAD", "path": r"/manifests/"},
        {"action": "stall", "method": "PUT", "path": r"/blobs/uploads/"},
        {"action": "dribble", "method": "HEAD", "path": r"/blobs/"},
    ],
    ids=["dribbled-answer", "stalled-uploads", "dribbled-blob-checks"],
)
def test_sigterm_ends_a_push_waiting_on_the_network(tmp_path: Path, proxy: FaultProxy, hostile: dict[str, Any]) -> None:
    rule = Rule(**hostile)
    src = multi_layer_image(tmp_path, layers=4, size=12 << 20)
    cache = Path(os.environ["LAYERFORGE_CACHE_DIR"])
    cache.mkdir()
    before = (snapshot(src), snapshot(cache))
    proxy.rules.append(rule)
    proc = subprocess.Popen(
        [layerforge_bin(), "push", f"{src}:v1", f"{proxy.host}/team/app:1", "--jobs", "4"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        want = 4 if rule.action == "stall" else 1  # every upload worker blocked on its socket
        wait_for(lambda: proxy.hostile[rule.action] >= want, proc, f"{want} hostile answer(s)")
        time.sleep(0.5)  # let the workers block in their reads and writes
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=BOUND)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=BOUND)
    assert proc.returncode == 143, err
    assert "terminated" in err and "Traceback" not in err, err
    assert (snapshot(src), snapshot(cache)) == before, "nothing written, nothing left behind"

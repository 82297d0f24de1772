"""The processes `pants package` runs for a nix_oci_image plan's layer jobs
(nix/package.py: layer_requests): one per job, its argv as the plan gives it, writing the job's
layer directories, named by the layers it builds; and the assembly's --layer-dir arguments,
one per layer in image order."""

from __future__ import annotations

import json

from pants.engine.addresses import Address

from layerforge_pants.nix.package import layer_dir_args, layer_json_glob, layer_requests
from layerforge_pants.nix.plan import PLAN_VERSION

ADDRESS = Address("app", target_name="img")
JOBS = [
    {"kind": "store-paths", "outs": ["layer1", "layer2", "layer3"], "argv": ["nix-layer", "--out", "layer1"]},
    {"kind": "store-paths", "outs": ["layer"], "argv": ["nix-layer", "--out", "layer", "--mtime", "1"]},
    {"kind": "root", "outs": ["layer"], "argv": ["nix-layer", "--out", "layer", "--copy-to-root", "x"]},
]


def test_one_process_per_job_named_by_its_layers() -> None:
    requests = layer_requests(json.dumps({"version": PLAN_VERSION, "jobs": JOBS}).encode(), ADDRESS)
    assert [r.description for r in requests] == [
        "Build layers 1-3/5 of app:img", "Build layer 4/5 of app:img", "Build layer 5/5 of app:img"
    ]  # fmt: skip
    assert [r.argv for r in requests] == [tuple(j["argv"]) for j in JOBS]
    assert [r.output_directories for r in requests] == [tuple(j["outs"]) for j in JOBS]
    assert all(r.native_command for r in requests)
    assert layer_dir_args(requests) == [
        "--layer-dir=l0/layer1", "--layer-dir=l0/layer2", "--layer-dir=l0/layer3", "--layer-dir=l1/layer",
        "--layer-dir=l2/layer",
    ]  # fmt: skip
    assert set(layer_json_glob(requests[0]).globs) == {
        "layer1/layer.json", "layer1/contents.json", "layer2/layer.json", "layer2/contents.json",
        "layer3/layer.json", "layer3/contents.json",
    }  # fmt: skip

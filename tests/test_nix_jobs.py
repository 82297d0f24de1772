"""The typed plan (no Nix, no Pants run): the layer jobs a nix-image plan hands out, their
layer job documents (``nix-layer --job``) read back into the same jobs, the documents' and
layer.json's shared vectors (the native command reads the same files in ``cargo test``), the
plan file's versioned schema as the tool and the Pants plugin read it, and the one
``--perms`` grammar both sides use."""

from __future__ import annotations

import ast
import importlib.util
import json
import random
import re
import sys
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from layerforge.cli.main import build_parser
from layerforge.errors import LayerforgeError, UsageError
from layerforge.images.nix import perms
from layerforge.images.nix.accounts import Account
from layerforge.images.nix.closure import Closure, PathInfo
from layerforge.images.nix.layer_job_document import JobLayer, LayerJobDocument, plan_job
from layerforge.images.nix.layer_jobs import (
    ALONE_BYTES,
    BATCH_BYTES,
    PER_IMAGE,
    PER_IMAGE_BATCH_BYTES,
    ROOT,
    SHARED,
    SNAPSHOTTER,
    STORE_PATHS,
    LayerBatch,
    LayerJob,
    batch_jobs,
    cuts_after,
)
from layerforge.images.nix.layering import LayerGroup
from layerforge.images.nix.perms import PermSpec, parse_perms
from layerforge.images.nix.plan import PLAN_VERSION, NixPlan
from layerforge.images.nix.provenance import build_options
from layerforge.images.nix.shared_cuts import shared_cuts
from layerforge.layers.build import BuiltLayer
from layerforge.layers.layer_dir import LAYER_JSON, read_layer_dir, write_layer_dir
from layerforge.layout.oci_layout import TMP_DIR
from layerforge.model.descriptor import Descriptor
from layerforge.model.media_types import LAYER_BY_COMPRESSION
from layerforge.option_rules import PERM_GRAMMAR

PLUGIN = Path(__file__).parent.parent / "pants-plugins" / "layerforge_pants"
VECTORS = Path(__file__).parent / "vectors"
NATIVE_SRC = Path(__file__).parent.parent / "rust" / "layerforge-cli" / "src"


def sp(name: str) -> str:
    h = "".join("0123456789abcdfghijklmnpqrsvwxyz"[(ord(c) * 7 + i) % 32] for i, c in enumerate((name * 32)[:32]))
    return f"/nix/store/{h}-{name}"


def plugin_module(name: str) -> ModuleType:
    """A plugin module without Pants (only plain-Python modules can be loaded this way)."""
    spec = importlib.util.spec_from_file_location(f"plugin_{name.replace('/', '_')}", PLUGIN / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = sys.modules.get(spec.name)
    if module is None:
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up while it loads
        spec.loader.exec_module(module)
    return module


def plugin_literal(module: str, name: str) -> object:
    """The literal value the plugin module assigns to ``name`` at top level, read from its source."""
    tree = ast.parse((PLUGIN / f"{module}.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{module}.py assigns no {name}")


def plugin_import(module: str, name: str) -> str:
    """The module the plugin module imports ``name`` from at top level, read from its source."""
    tree = ast.parse((PLUGIN / f"{module}.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and any(a.name == name and a.asname is None for a in node.names):
            return node.module or ""
    raise AssertionError(f"{module}.py imports no {name}")


def make_plan(nar_size: int = 1000, **changes: object) -> NixPlan:
    names = ("app-1.0", "libgreet-2.1", "etc-files-1", "busybox-1.35")
    infos = {sp(n): PathInfo(sp(n), "sha256-AAAA", nar_size, ()) for n in names}
    plan = NixPlan(
        ref="latest",
        arch="amd64",
        epoch=1700000000,
        closure=Closure(roots=(sp("app-1.0"),), infos=infos),
        layers=(
            LayerGroup((sp("app-1.0"), sp("libgreet-2.1"), sp("etc-files-1"), sp("busybox-1.35")), "merged"),
            LayerGroup((sp("etc-files-1"),), "path"),
        ),
        copy_to_root=(sp("busybox-1.35"),),
        account=Account("app", 1234, "app", 2345),
        perms=(PermSpec(f"{sp('app-1.0')}/bin(/.*)?", 0o750, 1234, 2345), PermSpec(".*/share", None, 0, 0)),
        compression="zstd",
        level=5,
    )
    return replace(plan, **changes)  # type: ignore[arg-type]


def document_of(argv: object) -> LayerJobDocument:
    """The layer job document a plan job's argv hands ``nix-layer``, as the command reads it."""
    assert isinstance(argv, (list, tuple)) and list(argv[:2]) == ["nix-layer", "--job"] and len(argv) == 3, argv
    args = build_parser("nix-layer").parse_args(list(argv))
    return LayerJobDocument.loads(args.job)


@pytest.mark.parametrize(
    "changes",
    [{}, {"nix_snapshotter": True}, {"check_arch": False, "level": None, "compression": "gzip"},
     {"account": None, "copy_to_root": ()}, {"perms": ()}, {"compression": "none", "level": None}],
    ids=["layers-and-root", "snapshotter", "foreign-allowed", "no-root", "no-perms", "uncompressed"],
)  # fmt: skip
def test_each_batch_document_reads_back_to_the_same_jobs(changes: dict[str, object]) -> None:
    """What Pants runs (the batch's argv: its layer job document) is the jobs ``nix-image``
    builds in-process, each into the batch's layer directory of it."""
    plan = make_plan(**changes)
    jobs = plan.layer_jobs()
    assert jobs, "a plan has layers"
    batches = plan.layer_batches()
    assert [j for b in batches for j in b.jobs] == list(jobs)
    for batch in batches:
        job = plan_job(batch)
        document = document_of(job["argv"])
        assert [(layer.out, layer.job) for layer in document.layers] == list(zip(batch.outs, batch.jobs))
        assert job["argv"][2] == document.dumps() == LayerJobDocument.of_batch(batch).dumps()
        assert (job["kind"], job["outs"]) == (batch.jobs[0].kind, list(batch.outs))


def test_small_consecutive_store_path_layers_are_one_batch_and_large_ones_alone() -> None:
    """One process builds several small layers (the cost of a process is paid once per
    batch); a layer above the batch size, the root layer and the snapshotter's run alone."""
    small = make_plan()
    batches = small.layer_batches()
    assert [len(b.jobs) for b in batches] == [2, 1] and batches[1].jobs[0].kind == ROOT
    assert batches[0].outs == ("layer1", "layer2") and batches[1].outs == ("layer",)
    layers = document_of(plan_job(batches[0])["argv"]).layers
    assert [(layer.out, layer.job.store_paths) for layer in layers][1:] == [("layer2", (sp("etc-files-1"),))]
    large = make_plan(nar_size=BATCH_BYTES // 2)  # the first layer holds four paths of it
    assert [len(b.jobs) for b in large.layer_batches()] == [1, 1, 1]
    assert [b.outs for b in large.layer_batches()] == [("layer",)] * 3
    (snap,) = make_plan(nix_snapshotter=True).layer_batches()
    assert snap.outs == ("layer",) and document_of(plan_job(snap)["argv"]).layers == (JobLayer("layer", snap.jobs[0]),)
    job = small.layer_jobs()[0]
    keep, cut = names(job, False, 15), names(job, True, 2)
    sizes = {keep[0]: 1, "big": ALONE_BYTES, keep[1]: 2, cut[0]: 1, keep[2]: ALONE_BYTES, keep[3]: 1}
    sizes |= {keep[4]: ALONE_BYTES - 1, keep[5]: 1}
    jobs = [replace(job, store_paths=(p,)) for p in sizes]
    grouped = batch_jobs(jobs, sizes.__getitem__)
    assert [[j.store_paths[0] for j in b.jobs] for b in grouped] == [
        [keep[0]], ["big"], [keep[1], cut[0]], [keep[2]], [keep[3], keep[4], keep[5]]]  # fmt: skip
    # Without a cut, a batch still ends before it would exceed BATCH_BYTES.
    many = dict.fromkeys(keep[6:15], ALONE_BYTES - 1)
    grouped = batch_jobs([replace(job, store_paths=(p,)) for p in many], many.__getitem__)
    assert [len(b.jobs) for b in grouped] == [BATCH_BYTES // (ALONE_BYTES - 1), 9 - BATCH_BYTES // (ALONE_BYTES - 1)]
    assert all(isinstance(b, LayerBatch) for b in grouped)


def test_an_image_without_neighbours_is_batched_into_the_fewest_processes() -> None:
    """``--layer-batches per-image`` (Pants: the repository's only nix_oci_image): consecutive
    store-path layers together up to PER_IMAGE_BATCH_BYTES whatever their size and wherever
    their paths would cut a shared batch; a larger one and the root layer alone. The layers
    are the same jobs in the same order, so the image is the same."""
    job = make_plan().layer_jobs()[0]
    keep, cut = names(job, False, 4), names(job, True, 3)
    sizes = {cut[0]: ALONE_BYTES * 2, keep[0]: 1, cut[1]: PER_IMAGE_BATCH_BYTES - ALONE_BYTES * 2 - 1, keep[1]: 1}
    sizes |= {keep[2]: PER_IMAGE_BATCH_BYTES, cut[2]: ALONE_BYTES, keep[3]: 1}
    jobs = [replace(job, store_paths=(p,)) for p in sizes] + [replace(job, kind=ROOT, store_paths=())]
    grouped = batch_jobs(jobs, lambda p: sizes.get(p, 0), PER_IMAGE)
    assert [[j.store_paths[0] if j.store_paths else "root" for j in b.jobs] for b in grouped] == [
        [cut[0], keep[0], cut[1]], [keep[1]], [keep[2]], [cut[2], keep[3]], ["root"]]  # fmt: skip
    assert [j for b in grouped for j in b.jobs] == jobs
    shared = batch_jobs(jobs, lambda p: sizes.get(p, 0))
    assert len(shared) > len(grouped) and [j for b in shared for j in b.jobs] == jobs
    with pytest.raises(ValueError, match="batching 'other' is not one of shared, per-image"):
        batch_jobs(jobs, lambda p: 0, "other")


def test_the_plan_keeps_its_batching_and_refuses_another_one() -> None:
    """The plan file says how its jobs are batched (``layerBatches``), and its jobs must be
    that batching's: a reader recomputes them from it."""
    plan = make_plan(nar_size=BATCH_BYTES // 2, batching=PER_IMAGE)
    doc = json.loads(plan.dumps())
    assert doc["layerBatches"] == PER_IMAGE and [len(j["outs"]) for j in doc["jobs"]] == [2, 1]
    read = NixPlan.loads(plan.dumps(), "plan.json")
    assert read.batching == PER_IMAGE and read.layer_batches() == plan.layer_batches()
    assert json.loads(replace(plan, batching=SHARED).dumps())["jobs"] != doc["jobs"]
    for value, why in ((SHARED, "the plan's jobs are not the layers it plans"), ("all", "layerBatches 'all'")):
        with pytest.raises(LayerforgeError, match=why):
            NixPlan.loads(json.dumps({**doc, "layerBatches": value}).encode(), "plan.json")
    # How the jobs are batched is no option of the image: its provenance does not say it.
    assert build_options(replace(plan, batching=SHARED, cuts=(1,))) == build_options(plan)
    assert "layerBatches" not in build_options(plan) and "cutsAfter" not in build_options(plan)
    # The cuts a shared plan adds are kept too, and read back into the same batches.
    cut = replace(make_plan(), layers=tuple(LayerGroup((sp(n),), "path") for n in ("app-1.0", "libgreet-2.1")))
    assert len(cut.layer_batches()[0].jobs) == 2
    doc = json.loads(replace(cut, cuts=(0,)).dumps())
    assert doc["cutsAfter"] == [0] and [len(j["outs"]) for j in doc["jobs"]][:2] == [1, 1]
    assert NixPlan.loads(json.dumps(doc).encode()).cuts == (0,)
    for value, why in (
        ([], "the plan's jobs are not the layers it plans"),
        ([0, 0], "cutsAfter"),
        (["0"], "cutsAfter"),
    ):
        with pytest.raises(LayerforgeError, match=why):
            NixPlan.loads(json.dumps({**doc, "cutsAfter": value}).encode(), "plan.json")


def names(job: LayerJob, cuts: bool, count: int) -> list[str]:
    """``count`` store-path names after which a batch of small jobs ends (``cuts``) or not."""
    found = (f"/nix/store/{i:032d}-p" for i in range(10_000))
    return [p for p in found if cuts_after(replace(job, store_paths=(p,))) == cuts][:count]


def test_images_sharing_layers_share_their_processes() -> None:
    """Two images whose job lists hold the same layers among others of their own: every large
    layer's process, and every batch of small ones between two cuts, is the same in both
    (argv and all), so Pants (and a remote cache) runs it once for both."""
    job = make_plan().layer_jobs()[0]
    keep, cut = names(job, False, 8), names(job, True, 3)
    shared = [keep[0], cut[0], "/nix/store/" + "b" * 32 + "-big", keep[1], keep[2], cut[1], keep[3], cut[2]]
    sizes = dict.fromkeys([*shared, keep[4], keep[5], keep[6], keep[7]], 1) | {shared[2]: ALONE_BYTES}
    image_a = [keep[4], *shared, keep[5]]
    image_b = [keep[6], keep[7], *shared[:5], *shared[5:]]

    def processes(paths: list[str]) -> set[tuple[str, ...]]:
        batches = batch_jobs([replace(job, store_paths=(p,)) for p in paths], sizes.__getitem__)
        return {tuple(plan_job(b)["argv"]) for b in batches}

    common = processes(image_a) & processes(image_b)
    in_common = {p for argv in common for layer in document_of(list(argv)).layers for p in layer.job.store_paths}
    # The run before the first cut differs (each image's own first layers join it); the rest
    # of the shared layers, cut at the same places, are the same processes.
    assert in_common == set(shared[2:]), sorted(in_common)


@pytest.mark.parametrize("seed", range(20))
def test_a_shared_plan_cuts_so_that_every_batch_is_one_process_for_all_its_images(seed: int) -> None:
    """Images of one shared plan (random subsets of a pool of small layers and a few large
    ones, in a common order with gaps, each with layers of its own): with the cuts
    shared_cuts gives, each batch is, in every image holding its first layer, the very same
    process; so each layer is built once, whatever images hold it. Without them some are not."""
    rng = random.Random(seed)
    job = make_plan().layer_jobs()[0]
    pool = [f"/nix/store/{rng.getrandbits(128):032x}-p{i}" for i in range(40)]
    sizes = {p: ALONE_BYTES if rng.random() < 0.1 else rng.randrange(1, 4 << 20) for p in pool}
    images = []
    for n in range(rng.randrange(2, 7)):
        own = [f"/nix/store/{rng.getrandbits(128):032x}-own{n}-{i}" for i in range(rng.randrange(0, 4))]
        sizes |= dict.fromkeys(own, 1000)
        paths = [p for p in pool if rng.random() < 0.85]
        for p in own:
            paths.insert(rng.randrange(len(paths) + 1), p)
        images.append([replace(job, store_paths=(p,)) for p in paths])

    def batches(cuts: list[tuple[int, ...]]) -> list[tuple[LayerBatch, ...]]:
        return [batch_jobs(jobs, sizes.__getitem__, cut=cut) for jobs, cut in zip(images, cuts)]

    def built(all_batches: list[tuple[LayerBatch, ...]]) -> int:
        return sum(len(b.jobs) for b in {b for bs in all_batches for b in bs})

    distinct = len({j for jobs in images for j in jobs})
    cuts = shared_cuts(images, sizes.__getitem__)
    together = batches(cuts)
    for a in together:
        for b in together:
            firsts = {batch.jobs[0]: batch for batch in b}
            jobs_b = {j for batch in b for j in batch.jobs}
            for batch in a:
                if batch.jobs[0] in jobs_b:
                    assert firsts.get(batch.jobs[0]) == batch
    assert built(together) == distinct, "each layer once"
    assert [j for bs in together for b in bs for j in b.jobs] == [j for jobs in images for j in jobs]
    assert all(cut == tuple(sorted(set(cut))) for cut in cuts)
    if seed == 0:
        assert built(batches([()] * len(images))) > distinct, "without the cuts, layers are built again"


def test_two_outs_resolving_to_one_directory_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`layer1`, `x/../layer1` and a link to layer1 are one directory: two layers would race
    for it and the first digest printed would not be the one left (third review)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x").mkdir()
    (tmp_path / "layer1").mkdir()
    (tmp_path / "link").symlink_to("layer1")
    document = LayerJobDocument.of_batch(make_plan().layer_batches()[0])
    document.check_dirs()
    first, second = document.layers
    for alias in ("x/../layer1", "link", f"{tmp_path}/layer1"):
        bad = LayerJobDocument((first, replace(second, out=alias)))
        with pytest.raises(
            UsageError, match=re.escape(f"'layers[1].out' '{alias}' names the same directory as 'layer1'")
        ):
            LayerJobDocument.loads(bad.dumps()).check_dirs()


def job_text(case: dict[str, Any]) -> str:
    """A vector's document as ``--job`` is given it."""
    return str(case["text"]) if "text" in case else json.dumps(case["document"])


def test_the_shared_vectors_read_as_they_say() -> None:
    """tests/vectors/layer_job.json (the native reader is held to the same file by cargo
    test): valid documents read back to their canonical text, invalid ones are one-line
    errors holding the fragment the vector names."""
    vectors = json.loads((VECTORS / "layer_job.json").read_bytes())
    assert len(vectors["valid"]) > 5 and len(vectors["invalid"]) > 30
    for case in vectors["valid"]:
        document = LayerJobDocument.loads(job_text(case))
        assert document.dumps() == case["canonical"], case["name"]
        assert LayerJobDocument.loads(case["canonical"]) == document, case["name"]
    for case in vectors["invalid"]:
        assert case["refusedBy"] in (["python", "native"], ["python"]), case["name"]
        with pytest.raises(LayerforgeError) as error:
            LayerJobDocument.loads(job_text(case))
        message = str(error.value)
        assert message.startswith("--job: ") and "\n" not in message, message
        assert case["error"] in message, (case["name"], message)


def test_a_media_type_is_its_compressions() -> None:
    """The one table of layer media types is Python's: a document's must be its compression's
    (the native reader, which has no table, writes the document's value into layer.json)."""
    (layer,) = LayerJobDocument.of_batch(make_plan().layer_batches()[1]).to_json()["layers"]
    assert layer["mediaType"] == LAYER_BY_COMPRESSION["zstd"]
    for media_type in (LAYER_BY_COMPRESSION["gzip"], "application/vnd.oci.image.layer.v1.tar+zstd ", "x"):
        doc = {"kind": "layerforge-layer-job", "version": 1, "layers": [{**layer, "mediaType": media_type}]}
        with pytest.raises(LayerforgeError, match=r"^--job: 'layers\[0\]\.mediaType' is .*: a zstd layer is "):
            LayerJobDocument.from_json(doc)


def test_the_layer_json_vectors_are_what_a_layer_directory_holds(tmp_path: Path) -> None:
    """tests/vectors/layer_json.json: layer_dir.py (the owner of the format) writes exactly
    these bytes and reads them back; the native command is held to the same bytes."""
    cases = json.loads((VECTORS / "layer_json.json").read_bytes())["cases"]
    assert len(cases) >= 3
    for i, case in enumerate(cases):
        v = case["layer"]
        descriptor = Descriptor(v["mediaType"], v["digest"], v["size"], annotations=v.get("annotations") or {})
        layer = BuiltLayer(descriptor=descriptor, diff_id=v["diffId"], uncompressed_size=v["uncompressedSize"])
        out = tmp_path / f"layer{i}"
        out.mkdir()
        write_layer_dir(out, layer)
        assert (out / LAYER_JSON).read_bytes() == case["bytes"].encode(), case["name"]
        assert read_layer_dir(out, blob=False) == layer, case["name"]


def test_the_jobs_are_the_plans_layers_in_image_order() -> None:
    plan = make_plan()
    jobs = plan.layer_jobs()
    assert [j.kind for j in jobs] == [STORE_PATHS, STORE_PATHS, ROOT]
    assert [j.store_paths for j in jobs[:2]] == [g.paths for g in plan.layers]
    assert all((j.compression, j.level, j.machine, j.mtime) == ("zstd", 5, "amd64", 1700000000) for j in jobs)
    assert jobs[0].perms == plan.perms and jobs[2].perms == ()
    assert (jobs[2].copy_to_root, jobs[2].account) == (plan.copy_to_root, plan.account)
    assert jobs[0].history() == "layerforge nix-image: app-1.0, libgreet-2.1, etc-files-1 and 1 more"
    assert jobs[2].history() == "layerforge nix-image: copy-to-root, user app"
    store_layer, root_layer = (JobLayer("layer", job).to_json() for job in (jobs[0], jobs[2]))
    assert store_layer["perms"][0] == {"pattern": f"{sp('app-1.0')}/bin(/.*)?", "mode": 0o750, "uid": 1234, "gid": 2345}
    assert root_layer["perms"] == [] and root_layer["account"] == {
        "user": "app",
        "uid": 1234,
        "group": "app",
        "gid": 2345,
    }
    assert (store_layer["compression"], store_layer["checkArch"]) == ({"algorithm": "zstd", "level": 5}, "amd64")
    (snap,) = make_plan(nix_snapshotter=True).layer_jobs()
    assert snap.kind == SNAPSHOTTER and snap.store_paths == tuple(sorted(plan.closure.infos))
    assert (snap.compression, snap.level, snap.machine) == ("gzip", None, None), "the snapshotter's layer is gzip"
    assert JobLayer("layer", make_plan(check_arch=False).layer_jobs()[0]).to_json()["checkArch"] is None


def test_the_plugin_reads_only_the_jobs_of_the_plan_file() -> None:
    nix_plan = plugin_module("nix/plan")
    plan = make_plan()
    layers = nix_plan.planned_layers(plan.dumps(), "plan.json of //:app")
    batches = plan.layer_batches()
    assert [(p.kind, p.argv, p.outs) for p in layers] == [
        (b.jobs[0].kind, tuple(plan_job(b)["argv"]), b.outs) for b in batches]  # fmt: skip
    assert [p.outs for p in layers] == [("layer1", "layer2"), ("layer",)]
    assert NixPlan.loads(plan.dumps(), "plan.json").layer_jobs() == plan.layer_jobs()
    assert nix_plan.PLAN_VERSION == PLAN_VERSION == plugin_literal("nix/plan", "PLAN_VERSION")
    assert json.loads(plan.dumps())["version"] == PLAN_VERSION


@pytest.mark.parametrize("version", [1, 2, 3, "4", None])
def test_a_plan_of_another_version_is_a_one_line_error_naming_the_file(version: object) -> None:
    doc = json.loads(make_plan().dumps())
    doc["version"] = version
    data = json.dumps(doc).encode()
    with pytest.raises(LayerforgeError) as tool_error:
        NixPlan.loads(data, "out/plan.json")
    message = str(tool_error.value)
    assert message.startswith("out/plan.json: ") and f"version {version!r} is not {PLAN_VERSION}" in message
    nix_plan = plugin_module("nix/plan")
    with pytest.raises(nix_plan.PlanUnreadable) as plugin_error:
        nix_plan.planned_layers(data, "plan.json of //:app")
    message = str(plugin_error.value)
    assert message.startswith("plan.json of //:app ") and f"version {version!r}" in message
    assert "\n" not in message and "\n" not in str(tool_error.value)


@pytest.mark.parametrize(
    "job",
    [{"kind": "store-paths", "outs": ["../x"], "argv": ["nix-layer"]},
     {"kind": "root", "outs": ["."], "argv": ["nix-layer"]},
     {"kind": "store-paths", "outs": [], "argv": ["nix-layer"]},
     {"kind": "store-paths", "outs": ["a", "a"], "argv": ["nix-layer"]},
     {"kind": "store-paths", "outs": "layer", "argv": ["nix-layer"]},
     {"kind": "store-paths", "out": "layer", "argv": ["nix-layer"]},
     {"kind": "other", "outs": ["layer"], "argv": ["nix-layer"]}, {"kind": "root", "outs": ["layer"], "argv": ["sh"]},
     {"kind": "root", "outs": ["layer"], "argv": [1]}, "x"],
)  # fmt: skip
def test_the_plugin_refuses_malformed_jobs(job: object) -> None:
    nix_plan = plugin_module("nix/plan")
    doc = json.loads(make_plan().dumps())
    doc["jobs"][1] = job
    with pytest.raises(nix_plan.PlanUnreadable, match=r"^plan\.json of //:app: layer job 1 is not"):
        nix_plan.planned_layers(json.dumps(doc).encode(), "plan.json of //:app")


def test_the_tool_refuses_jobs_that_are_not_the_plans_layers() -> None:
    """The assembly reads the plan; the layers were built from its jobs: they must agree."""
    doc = json.loads(make_plan().dumps())
    argv = doc["jobs"][0]["argv"]
    assert '"mode":488' in argv[2]  # 0750
    doc["jobs"][0]["argv"] = [a.replace('"mode":488', '"mode":511') for a in argv]
    with pytest.raises(LayerforgeError, match=r"^p\.json: the plan's jobs are not the layers it plans$"):
        NixPlan.loads(json.dumps(doc).encode(), "p.json")
    with pytest.raises(LayerforgeError, match=r"^p\.json: unreadable nix-image plan"):
        NixPlan.loads(b"[]", "p.json")


def test_perms_apply_to_store_path_layers_only() -> None:
    root = JobLayer("layer", make_plan().layer_jobs()[2]).to_json()
    rule = {"pattern": ".*", "mode": 0o755, "uid": None, "gid": None}
    doc = {"kind": "layerforge-layer-job", "version": 1, "layers": [{**root, "perms": [rule]}]}
    with pytest.raises(LayerforgeError, match=re.escape("'layers[0].perms' applies to store-path layers only")):
        LayerJobDocument.from_json(doc)


#: Rules both former readers were tested with (the Pants field and the tool's --perms), and
#: the edges between them: whether a rule is accepted (with names for owner and group).
PERM_CASES = [
    ("/nix/store/.*-app/bin/.*=0755", True),
    ("/nix/store/.*-app/var(/.*)?=0755:app:app", True),
    ("/nix/store/.*-app/bin(/.*)?=0750:1000:100", True),
    ("x=:0:0", True),
    ("x=755", True),
    ("a=b=0644", True),
    ("x=", False),
    ("x=:", False),
    ("x=0755:1", False),
    ("x=0755:1:2:3", False),
    ("x=75", False),
    ("x=07555", False),
    ("x=0855", False),
    ("=0755", False),
    ("no-equals", False),
    ("x=0755\n", False),
]


def tool_accepts(rule: str) -> bool:
    try:
        parse_perms([rule])
    except UsageError:
        return False
    return True


def test_the_plugin_and_the_tool_share_one_perms_grammar() -> None:
    source = plugin_import("nix/target", "PERM_GRAMMAR")
    assert source == "layerforge_pants.goals.option_rules", "nix_target.py reads the option table's grammar"
    assert perms.PERM_GRAMMAR is PERM_GRAMMAR, "the tool reads the option table's grammar"
    plugin = re.compile(PERM_GRAMMAR)
    for rule, accepted in PERM_CASES:
        assert (tool_accepts(rule), bool(plugin.match(rule))) == (accepted, accepted), rule


def test_a_rule_reads_back_from_its_argument() -> None:
    for rule, accepted in PERM_CASES:
        if accepted:
            (spec,) = parse_perms([rule])
            assert parse_perms([spec.to_arg()]) == (spec,), rule


def test_the_native_command_copies_no_table_of_the_tools() -> None:
    """rust/layerforge-cli reads the architecture, the media type, the compression and the
    perms from the job document and writes layer.json from the shared vectors' format; it
    restates the layout's scratch directory only, which must be the tool's."""
    sources = {p.name: p.read_text() for p in NATIVE_SRC.glob("*.rs")}
    for name in ("nix_layer.rs", "layer_job.rs", "layer_dir.rs"):
        source = sources[name]
        assert "application/vnd.oci" not in source.split("#[cfg(test)]")[0], name
        assert not re.search(r'"(amd64|arm64|ppc64le|s390x|riscv64)"', source.split("#[cfg(test)]")[0]), name
        assert "PERM_GRAMMAR" not in source and "rsplit_once('=')" not in source, name
    tmp = re.search(r'const TMP_DIR: &str = "(.*?)";', sources["nix_layer.rs"])
    assert tmp and tmp.group(1) == TMP_DIR
    assert 'include_str!("../../../tests/vectors/layer_job.json")' in sources["layer_job.rs"]
    assert 'include_str!("../../../tests/vectors/layer_json.json")' in sources["layer_dir.rs"]

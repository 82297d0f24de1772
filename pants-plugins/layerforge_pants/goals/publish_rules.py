"""The `publish` rule of every image kind (see `publish.py`): each push gets its layout's
documents and only the layers the registry lacks (see `publish_layout.py`)."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterable

from pants.base.build_environment import get_buildroot
from pants.core.goals.publish import PublishProcesses
from pants.core.util_rules.distdir import DistDir
from pants.engine.fs import Digest, DigestSubset, MergeDigests
from pants.engine.rules import collect_rules, rule

from layerforge_pants.goals import (
    engine,
    tool_rules,  # noqa: F401  (its rule is awaited through the engine)
)
from layerforge_pants.goals.publish import (
    PublishImageRequest,
    merged_packages,
    publish_processes,
    pushes,
    signing_key,
    to_push,
)
from layerforge_pants.goals.publish_layout import (
    LayoutWalk,
    blob_subset,
    documents_subset,
    layers_to_give,
    unanswered,
)
from layerforge_pants.goals.subsystem import Layerforge

logger = logging.getLogger(__name__)


async def read_layouts(package: Digest, layouts: Iterable[str]) -> dict[str, LayoutWalk]:
    """The documents and layers of each layout of the package, read a level at a time (the
    index.json, its manifests, their children...): only documents are read."""
    walks = {layout: LayoutWalk(layout) for layout in layouts}
    digests = await engine.subsets(DigestSubset(package, w.index_globs()) for w in walks.values())
    indexes = await engine.contents_all(digests)
    going = [w for w, c in zip(walks.values(), indexes) if w.start(c)]
    while going:
        digests = await engine.subsets(DigestSubset(package, w.next_globs()) for w in going)
        contents = await engine.contents_all(digests)
        going = [w for w, c in zip(going, contents) if w.step(c)]
    return walks


@rule(desc="Push images")
async def publish_images(request: PublishImageRequest, tool: Layerforge, dist: DistDir) -> PublishProcesses:
    records = os.path.join(get_buildroot(), dist.relpath) if tool.publish_records else None
    jobs = pushes(request, tool, records, signing_key(tool, get_buildroot()))
    package_digest = await engine.merge(merged_packages(request))
    pushing = [j for j in jobs if j.process is not None]
    walks = await read_layouts(package_digest, sorted({j.layout for j in pushing}))
    readable = [w for w in walks.values() if w.readable]
    subsets = await engine.subsets(documents_subset(package_digest, w) for w in readable)
    documents = dict(zip((w.layout for w in readable), subsets))
    asking = [(i, j.query) for i, j in enumerate(pushing) if j.query is not None and j.layout in documents]
    queries = await engine.layerforge_processes(
        dataclasses.replace(q, input_digest=documents[pushing[i].layout]) for i, q in asking
    )
    answers = dict(zip((i for i, _ in asking), await engine.execute_all(queries)))
    # Per push: None, the whole package; else the layout's documents and these layers.
    given: list[set[str] | None] = []
    for i, j in enumerate(pushing):
        layers = layers_to_give(walks[j.layout], j.query is not None, answers.get(i))
        if layers is None and i in answers:
            logger.warning(unanswered(j.refs[0], answers[i]))
        given.append(layers)
    layered = [i for i, g in enumerate(given) if g]
    blobs = await engine.subsets(blob_subset(package_digest, walks[pushing[i].layout], given[i] or ()) for i in layered)
    merged = await engine.merges(MergeDigests([documents[pushing[i].layout], b]) for i, b in zip(layered, blobs))
    with_layers = dict(zip(layered, merged))
    inputs = [
        package_digest if g is None else with_layers.get(i, documents[j.layout])
        for i, (j, g) in enumerate(zip(pushing, given))
    ]
    processes = await engine.layerforge_processes(to_push(jobs, inputs))
    return publish_processes(jobs, processes)


def rules() -> list[object]:
    return [*collect_rules()]

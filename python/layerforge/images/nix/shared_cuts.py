"""Where the plans of several images (one ``nix-plans`` process: the images of one shared
evaluation) cut their batches of small layers beyond the cuts each job's own store paths
make (:func:`layer_jobs.cuts_after`), so that every batch is the same in every image holding
its first layer, and so one process for all of them.

A batch of small jobs runs from one cut to the next. Two images holding the same run of
layers cut it at the same places, but a run that one image interleaves with a layer of its
own (a service's data, a package another image leaves out) would give each image a batch of
its own, each building the shared layers again. So the plans also cut after a job whenever
another image holding that job follows it with another job (or ends there), and before a job
whenever another image holding it precedes it with another (or starts with it). Then a run
of jobs without a cut is, in every image holding its first job, the same run between the
same cuts (same jobs, same start, so the same size cut too): one process, whatever images
ask for it. Only the cuts that change a batch are kept (between two small store-path jobs
that no other rule cuts already), so an image whose neighbours do not matter plans as alone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

from layerforge.images.nix.layer_jobs import LayerJob, cuts_after, job_bytes, small

#: Stands for "no job": before an image's first job and after its last.
_EDGE = object()


def shared_cuts(images: Sequence[Sequence[LayerJob]], nar_size: Callable[[str], int]) -> list[tuple[int, ...]]:
    """For each image's jobs (in order), the indices of the jobs after which its batch must
    end besides its own cuts, sorted."""
    following: dict[LayerJob, set[object]] = defaultdict(set)
    preceding: dict[LayerJob, set[object]] = defaultdict(set)
    for jobs in images:
        for i, job in enumerate(jobs):
            following[job].add(jobs[i + 1] if i + 1 < len(jobs) else _EDGE)
            preceding[job].add(jobs[i - 1] if i > 0 else _EDGE)

    def batched(job: LayerJob) -> bool:
        return small(job, job_bytes(job, nar_size))

    cuts = []
    for jobs in images:
        cut = tuple(
            i
            for i, (job, after) in enumerate(zip(jobs, jobs[1:]))
            if batched(job) and batched(after) and not cuts_after(job)
            and (len(following[job]) > 1 or len(preceding[after]) > 1)
        )  # fmt: skip
        cuts.append(cut)
    return cuts

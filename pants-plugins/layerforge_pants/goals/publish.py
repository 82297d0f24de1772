"""`pants publish` for every image kind: push the layout `package` built, to each registry,
under each tag, with `layerforge push` (blobs skipped or mounted when present, manifests
last). Each push gets the layout's documents and only the layers the registry lacks, as a
dry run of it answers first (see `publish_layout.py`). Pushing and asking are never cached;
logins and CAs come from the environment passed through `[layerforge].registry_env_vars` and
never reach a cache or a log."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from dataclasses import dataclass

from pants.core.goals.publish import (
    PublishFieldSet,
    PublishOutputData,
    PublishPackages,
    PublishProcesses,
    PublishRequest,
)
from pants.engine.fs import EMPTY_DIGEST, Digest, MergeDigests
from pants.engine.process import InteractiveProcess, Process, ProcessCacheScope
from pants.engine.target import InvalidFieldException

from layerforge_pants.goals.package import BuiltImageArtifact
from layerforge_pants.goals.registries import RegistryError
from layerforge_pants.goals.subsystem import ENV_KEY_PREFIX, Layerforge
from layerforge_pants.goals.target_types import ImageRegistriesField, ImageSkipPushField
from layerforge_pants.goals.tool import LayerforgeProcess
from layerforge_pants.goals.tool_option import option


class PublishImageRequest(PublishRequest):
    pass


@dataclass(frozen=True)
class PublishImageFieldSet(PublishFieldSet):
    publish_request_type = PublishImageRequest
    required_fields = (ImageRegistriesField, ImageSkipPushField)

    registries: ImageRegistriesField
    skip_push: ImageSkipPushField

    def get_output_data(self) -> PublishOutputData:
        # The registries, digest and references each push used are in its own data (see
        # `pushes`): the field's value (often empty, meaning the defaults) would hide them.
        return PublishOutputData({"publisher": "layerforge", **super().get_output_data()})


#: `--publish-output` data of one push, as (key, value) pairs (a frozen dataclass field).
OutputData = tuple[tuple[str, object], ...]


@dataclass(frozen=True)
class Push:
    """One artifact to one registry: ``refs`` (the first is pushed, the rest are its other
    tags), and the push, or why it is skipped (``process`` None)."""

    refs: tuple[str, ...]
    process: LayerforgeProcess | None = None
    description: str | None = None
    data: OutputData = ()
    #: The layout pushed (its path in the package), and the dry run asking the registry which
    #: of its layers it lacks (None: a dry run itself, which needs no layer).
    layout: str = ""
    query: LayerforgeProcess | None = None


def pushes(
    request: PublishImageRequest, tool: Layerforge, records: str | None = None, sign_key: str | None = None
) -> list[Push]:
    """Every artifact of ``request`` to every registry it goes to (or the reason none does).
    ``records``: the directory (absolute: `dist/`) of the publish records the pushes add to;
    ``sign_key``: the key the pushes sign with (see :func:`signing_key`)."""
    fs = request.field_set
    try:
        registries = tool.registries().resolve(fs.registries.value or (), f"The `registries` field of {fs.address}")
    except RegistryError as e:
        raise InvalidFieldException(str(e)) from None
    artifacts = [a for pkg in request.packages for a in pkg.artifacts if isinstance(a, BuiltImageArtifact)]
    if not registries:
        names = tuple(f"{a.repository}:{t}" for a in artifacts for t in a.tags)
        return [Push(names, description="(no registries: none given or default)", data=(("registries", ()),))]
    jobs: list[Push] = []
    for art in artifacts:
        for reg in registries:
            repo = reg.repository or art.repository
            refs = tuple(f"{reg.address}/{repo}:{t}" for t in art.tags)
            data = push_data(art, reg.address, repo, refs)
            if fs.skip_push.value or reg.skip_push:
                why = f"`skip_push` on {fs.address}" if fs.skip_push.value else f"skip_push on registry @{reg.alias}"
                jobs.append(Push(refs, description=f"(by {why})", data=(*data, ("registries", ()))))
                continue
            record = None if records is None or tool.publish_dry_run else publish_record_path(records, art)
            if record is not None:
                data = (*data, ("record", record))
            dry = tool.publish_dry_run
            signing = None if dry or not sign_key else (sign_key, tool.source_revision or None)
            process = LayerforgeProcess(
                argv=push_argv(art, refs[0], reg.insecure, dry_run=dry, record=record, signing=signing),
                description=f"{'Dry run of the push of' if dry else 'Push'} {refs[0]}",
                input_digest=EMPTY_DIGEST,  # the packages: see `merged_packages`
                cache_scope=ProcessCacheScope.PER_SESSION,
                native_command=True,
                registry=True,
                signing=signing is not None,
            )
            what = "dry run, nothing pushed" if dry else art.manifest_digest
            query = None if dry else query_process(art, refs[0], reg.insecure)
            jobs.append(
                Push(
                    refs,
                    process,
                    description=f"{reg.address} ({what})",
                    data=(*data, ("dry_run", dry)),
                    layout=art.layout,
                    query=query,
                )
            )
    return jobs


def query_process(art: BuiltImageArtifact, target: str, insecure: bool) -> LayerforgeProcess:
    """The dry run of the push of ``art`` to ``target`` as JSON: which blobs the registry
    lacks (HEAD requests only). Never cached: the answer is the registry's, now."""
    return LayerforgeProcess(
        argv=push_argv(art, target, insecure, dry_run=True, json_plan=True),
        description=f"Ask {target.rsplit(':', 1)[0]} which layers of {art.layout} it lacks",
        input_digest=EMPTY_DIGEST,  # the layout's documents: see publish_rules
        cache_scope=ProcessCacheScope.PER_SESSION,
        registry=True,  # its logins and CAs (`[layerforge].registry_env_vars`), as the push's
    )


def push_data(
    art: BuiltImageArtifact, registry: str, repo: str, refs: tuple[str, ...]
) -> tuple[tuple[str, object], ...]:
    """What `--publish-output` says of one push: the registry it used, the digest its tags
    name, the repository and the references."""
    return (
        ("registries", (registry,)),
        ("digest", art.manifest_digest),
        ("repository", repo),
        ("references", refs),
        ("layout", art.layout),
    )


def publish_record_path(records: str, art: BuiltImageArtifact) -> str:
    """`dist/<output_path>.publish.layerforge.json`: the publish record of the artifact."""
    return f"{records}/{art.layout}.publish.layerforge.json"


def push_argv(
    art: BuiltImageArtifact,
    target: str,
    insecure: bool,
    *,
    dry_run: bool = False,
    record: str | None = None,
    json_plan: bool = False,
    signing: tuple[str, str | None] | None = None,
) -> tuple[str, ...]:
    """`layerforge push` of the artifact's layout to ``target``, its other tags as ``--tag=``
    values and the two positionals after ``--`` (the layout is the `output_path` field's);
    ``--dry-run`` (with ``--json``: ``json_plan``) or ``--record=`` (the publish record) when
    asked; ``--sign-key=`` (and ``--source-revision=``) when ``signing``."""
    flags = (*(option("--tag", t) for t in art.tags[1:]), *(("--insecure",) if insecure else ()))
    if signing is not None:
        flags += (option("--sign-key", signing[0]),)
        flags += (option("--source-revision", signing[1]),) if signing[1] else ()
    flags += ("--dry-run",) if dry_run else ()
    flags += ("--json",) if json_plan else ()
    flags += (option("--record", record),) if record is not None else ()
    return ("push", *flags, "--", f"{art.layout}:{art.ref}", target)


def signing_key(tool: Layerforge, build_root: str) -> str | None:
    """`[layerforge].sign_key` as the push names it: `env://VAR` as it is, a path made
    absolute (the push runs in a sandbox), None when unset."""
    key = tool.sign_key
    if not key:
        return None
    if key.startswith(ENV_KEY_PREFIX):
        if not key[len(ENV_KEY_PREFIX) :].isidentifier():
            raise InvalidFieldException(f"[layerforge].sign_key: {key!r} names no environment variable (env://VAR)")
        return key
    return os.path.join(build_root, os.path.expanduser(key))


def merged_packages(request: PublishImageRequest) -> MergeDigests:
    return MergeDigests(pkg.digest for pkg in request.packages)


def to_push(jobs: list[Push], inputs: Iterable[Digest]) -> list[LayerforgeProcess]:
    """The pushes among ``jobs`` (not the skipped ones), each with its input (in that order)."""
    given = iter(inputs)
    return [dataclasses.replace(j.process, input_digest=next(given)) for j in jobs if j.process is not None]


def publish_processes(jobs: list[Push], processes: Iterable[Process]) -> PublishProcesses:
    """``jobs`` for the publish goal, the pushes run as ``processes`` (in :func:`to_push`'s order)."""
    pushed = iter(processes)
    return PublishProcesses(
        PublishPackages(
            names=j.refs,
            process=InteractiveProcess.from_process(next(pushed)) if j.process is not None else None,
            description=j.description,
            data=PublishOutputData(dict(j.data)),
        )
        for j in jobs
    )


def rules():
    return [*PublishImageFieldSet.rules()]

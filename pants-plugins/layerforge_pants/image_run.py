"""`pants run` for image targets: build the layout as `package` does, then run it. Container
images: `layerforge run` in the machine's container runtime (`[layerforge].runtime`: docker when its daemon answers,
else podman), tagged `repository:tag`, interactively, arguments after `--` passed through and
the container's exit status returned. The load is incremental: layers the runtime already
holds are not sent again. Unikernels: `layerforge unikraft-run`, which boots the package's
qemu kernel for the host's architecture in QEMU as `kraft run` does, with the console attached
(`[layerforge].unikraft_run_options`).

Any kind whose `package` gives a :class:`BuiltImageArtifact` joins with a `RunFieldSet` and a
rule answering it with ``Get(RunRequest, ImageRunRequest(field_set.address, ItsPackageFieldSet))``
(see `nix_run.py`)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from pants.backend.python.util_rules.interpreter_constraints import InterpreterConstraints
from pants.backend.python.util_rules.pex import VenvPex, VenvPexRequest
from pants.backend.python.util_rules.pex_environment import PexEnvironment, PythonExecutable
from pants.core.goals.package import BuiltPackage, PackageFieldSet
from pants.core.goals.run import RunRequest
from pants.engine.addresses import Address
from pants.engine.fs import Digest, MergeDigests
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import WrappedTarget, WrappedTargetRequest

from layerforge_pants.image_dependency import CompleteLayout, CompleteLayoutRequest
from layerforge_pants.image_package import BuiltImageArtifact
from layerforge_pants.subsystem import Layerforge


@dataclass(frozen=True)
class ImageRunRequest:
    """Run the image that ``package_field_set_type``'s `package` builds for ``address``: in a
    container runtime, or booted in QEMU when ``unikernel``."""

    address: Address
    package_field_set_type: type[PackageFieldSet]
    unikernel: bool = False


def _in_chroot(relpath: str) -> str:
    return os.path.join("{chroot}", relpath)


def run_argv(tool: Layerforge, art: BuiltImageArtifact) -> list[str]:
    """`layerforge run` of the artifact's layout, with the subsystem's runtime options."""
    argv = ["run", *([f"--runtime={tool.runtime}"] if tool.runtime else [])]
    argv += [f"--runtime-option={o}" for o in tool.runtime_options]
    argv += [f"--run-option={o}" for o in tool.run_options]
    argv += [a for t in art.tags for a in ("--tag", f"{art.repository}:{t}")]
    return [*argv, _in_chroot(f"{art.layout}:{art.ref}"), "--"]


def boot_argv(tool: Layerforge, art: BuiltImageArtifact) -> list[str]:
    """`layerforge unikraft-run` of the artifact's package."""
    return ["unikraft-run", *tool.unikraft_run_options, _in_chroot(f"{art.layout}:{art.ref}"), "--"]


async def run_layout(
    layout_digest: Digest, art: BuiltImageArtifact, tool: Layerforge, pex_env: PexEnvironment, unikernel: bool = False
) -> RunRequest:
    """The run request of the image ``art`` names in ``layout_digest``: the tool's venv PEX run
    in the workspace with the layout next to it."""
    # The tool runs in the workspace, not a sandbox: its PEX_ROOT is the named cache itself.
    environment = pex_env.in_workspace()
    pex_request = tool.to_pex_request()
    venv_pex, python = await MultiGet(
        Get(VenvPex, VenvPexRequest(pex_request, environment)),
        Get(PythonExecutable, InterpreterConstraints, pex_request.interpreter_constraints),
    )
    digest = await Get(Digest, MergeDigests([venv_pex.digest, layout_digest]))
    return RunRequest(
        digest=digest,
        args=[_in_chroot(venv_pex.pex.argv0), *(boot_argv if unikernel else run_argv)(tool, art)],
        extra_env=environment.environment_dict(python=python),
        append_only_caches={**environment.append_only_caches, **(venv_pex.append_only_caches or {})},
    )


@rule(desc="Run an image")
async def run_image(request: ImageRunRequest, tool: Layerforge, pex_env: PexEnvironment) -> RunRequest:
    wrapped = await Get(WrappedTarget, WrappedTargetRequest(request.address, description_of_origin="the `run` goal"))
    package = await Get(BuiltPackage, PackageFieldSet, request.package_field_set_type.create(wrapped.target))
    (art,) = [a for a in package.artifacts if isinstance(a, BuiltImageArtifact)]
    complete = await Get(CompleteLayout, CompleteLayoutRequest(request.address, package.digest, art.layout))
    return await run_layout(complete.digest, art, tool, pex_env, unikernel=request.unikernel)


def rules():
    return collect_rules()

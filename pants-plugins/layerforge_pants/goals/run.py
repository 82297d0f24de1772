"""`pants run` for image targets: build the layout as `package` does, then run it. Container
images: `layerforge run` in the machine's container runtime (`[layerforge].runtime`: docker when its daemon answers,
else podman), tagged `repository:tag`, interactively, arguments after `--` passed through and
the container's exit status returned. The load is incremental: layers the runtime already
holds are not sent again. Unikernels: `layerforge unikraft-run`, which boots the package's
qemu kernel for the host's architecture in QEMU as `kraft run` does, with the console attached
(`[layerforge].unikraft_run_options`).

Any kind whose `package` gives a :class:`BuiltImageArtifact` joins with a `RunFieldSet` and a
rule (in each engine's rules module) answering it with the `run_image` rule on
``ImageRunRequest(field_set.address, ItsPackageFieldSet)`` (see `nix/rules.py`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from pants.backend.python.util_rules.pex import VenvPex
from pants.backend.python.util_rules.pex_environment import CompletePexEnvironment, PexEnvironment, PythonExecutable
from pants.core.goals.package import BuiltPackage, PackageFieldSet
from pants.core.goals.run import RunRequest
from pants.engine.addresses import Address
from pants.engine.fs import Digest
from pants.engine.target import WrappedTargetRequest

from layerforge_pants.goals.package import BuiltImageArtifact
from layerforge_pants.goals.subsystem import Layerforge
from layerforge_pants.goals.tool_option import option

#: Tells the tool to name its settings as the `[layerforge]` options they come from in its
#: errors (python/layerforge/runtime/option_names.py reads it; tests/test_runtime_run.py holds
#: the two names together).
OPTION_NAMES = "LAYERFORGE_OPTION_NAMES"


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
    argv = ["run", *([option("--runtime", tool.runtime)] if tool.runtime else [])]
    argv += [option("--runtime-option", o) for o in tool.runtime_options]
    argv += [option("--run-option", o) for o in tool.run_options]
    argv += [option("--tag", f"{art.repository}:{t}") for t in art.tags]
    return [*argv, _in_chroot(f"{art.layout}:{art.ref}"), "--"]


def boot_argv(tool: Layerforge, art: BuiltImageArtifact) -> list[str]:
    """`layerforge unikraft-run` of the artifact's package."""
    return ["unikraft-run", *tool.unikraft_run_options, _in_chroot(f"{art.layout}:{art.ref}"), "--"]


def run_request(
    venv_pex: VenvPex,
    digest: Digest,
    python: PythonExecutable | None,
    *,
    environment: CompletePexEnvironment,
    tool: Layerforge,
    art: BuiltImageArtifact,
    unikernel: bool = False,
) -> RunRequest:
    """The run request of the image ``art`` names: the tool's venv PEX run in the workspace
    (``environment``, see :func:`in_workspace`) with the layout next to it (``digest`` holds both)."""
    return RunRequest(
        digest=digest,
        args=[_in_chroot(venv_pex.pex.argv0), *(boot_argv if unikernel else run_argv)(tool, art)],
        extra_env={**pex_env_vars(environment, python), OPTION_NAMES: "pants"},
        append_only_caches={**environment.append_only_caches, **(venv_pex.append_only_caches or {})},
    )


def pex_env_vars(environment: CompletePexEnvironment, python: PythonExecutable | None) -> Mapping[str, str]:
    """What the venv PEX runs with: on Pants 2.17 naming the interpreter (``python``); on 2.30+,
    whose ``environment_dict`` has no ``python``, without one (None: the venv's own, as
    Pants' own `run` of a PEX does there)."""
    if python is None:
        return environment.environment_dict(python_configured=True)
    return environment.environment_dict(python=python)


def in_workspace(pex_env: PexEnvironment) -> CompletePexEnvironment:
    # The tool runs in the workspace, not a sandbox: its PEX_ROOT is the named cache itself.
    return pex_env.in_workspace()


def run_target_request(request: ImageRunRequest) -> WrappedTargetRequest:
    return WrappedTargetRequest(request.address, description_of_origin="the `run` goal")


def run_artifact(package: BuiltPackage) -> BuiltImageArtifact:
    (art,) = [a for a in package.artifacts if isinstance(a, BuiltImageArtifact)]
    return art

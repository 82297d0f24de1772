"""The ``[layerforge]`` subsystem: the layerforge tool (a PEX built from the project's own
wheel) and the backend's options (registries, repository naming, build args, environment)."""

from __future__ import annotations

from pants.backend.python.subsystems.python_tool_base import PythonToolBase
from pants.backend.python.target_types import EntryPoint
from pants.option.option_types import BoolOption, DictOption, IntOption, StrListOption, StrOption
from pants.util.strutil import softwrap

from layerforge_pants.goals.registries import Registries

#: cosign's variable for the password of an encrypted key.
SIGN_PASSWORD_ENV = "COSIGN_PASSWORD"
#: How `sign_key` names a key held in an environment variable.
ENV_KEY_PREFIX = "env://"


class Layerforge(PythonToolBase):
    options_scope = "layerforge"
    name = "layerforge"
    help = softwrap(
        """
        layerforge builds reproducible OCI images (nix_oci_image, unikraft_image, nydus_image)
        and publishes them to OCI registries. Every step runs as a cached process of the
        `layerforge` tool, installed from the resolve named by `install_from_resolve`.
        """
    )

    default_version = "layerforge==0.1.0"
    # The wheel's `layerforge` command is native and execs Python; inside the tool PEX the
    # Python entry point is called directly.
    default_main = EntryPoint("layerforge.cli.main", "main")
    default_requirements = ["layerforge==0.1.0"]
    register_interpreter_constraints = True
    default_interpreter_constraints = ["CPython>=3.9,<3.14"]
    # Required by Pants; the tool is meant to be installed from a resolve (install_from_resolve),
    # because its wheel is built in this repository, not downloaded.
    default_lockfile_resource = ("layerforge_pants", "layerforge.lock")

    _registries = DictOption[dict](
        help=softwrap(
            """
            Registries images can be pushed to, by alias. Each value is a table with `address`
            (host[:port]), optional `default` (pushed to when a target names no registries),
            `insecure` (plain HTTP), `skip_push` and `repository` (overrides the target's).

                [layerforge.registries.company]
                address = "registry.example.com"
                default = true

            Targets refer to them as `registries=["@company"]` or by literal address.
            """
        ),
        fromfile=True,
    )
    default_repository = StrOption(
        default="{name}",
        help=softwrap(
            """
            Repository of images whose target sets no `repository`. May use `{name}` (target
            name), `{directory}` (its directory's name), `{parent_directory}` and
            `{build_args.NAME}`.
            """
        ),
    )
    build_args = StrListOption(
        help=softwrap(
            """
            Values for `{build_args.NAME}` in `repository` and `image_tags`: `NAME=VALUE`, or
            `NAME` alone to take the value from the environment Pants runs in.
            """
        ),
    )
    env_vars = StrListOption(
        default=[
            "NIX_CONFIG",
            "NIX_PATH",
            "NIX_REMOTE",
            "SOURCE_DATE_EPOCH",
            "HOME",
        ],
        help=softwrap(
            """
            Environment variables passed to layerforge processes (`NAME` or `NAME=VALUE`). They
            are part of each process's cache key. Nix reads its configuration from them.
            """
        ),
        advanced=True,
    )
    registry_env_vars = StrListOption(
        default=[
            "HOME",
            "XDG_RUNTIME_DIR",
            "XDG_CONFIG_HOME",
            "DOCKER_CONFIG",
            "REGISTRY_AUTH_FILE",
            "SSL_CERT_FILE",
            "SSL_CERT_DIR",
            "CONTAINERS_REGISTRIES_CONF",
        ],
        help=softwrap(
            """
            Environment variables (`NAME` or `NAME=VALUE`) of the processes that talk to
            registries, besides `env_vars`: where logins are (`podman login`'s auth.json,
            Docker's config.json, `REGISTRY_AUTH_FILE`), mirrors and insecure registries
            (registries.conf) and which CAs are trusted (`SSL_CERT_FILE`,
            and the certs.d folders under `HOME`; `/etc/containers/certs.d` and
            `/etc/docker/certs.d` are read as they are). They never enter a cache key: `publish`
            is not cached, and the pull of a `remote_oci_image` is cached only when it needs none
            of them (it is asked again with them, uncached, when the registry wants a login or a CA).
            Cached layerforge processes do not see them (not even the `SSL_CERT_FILE` and
            `SSL_CERT_DIR` Pants passes to every PEX) unless `env_vars` names them too.
            """
        ),
        advanced=True,
    )
    nix_search_path = StrListOption(
        default=["<PATH>", "/nix/var/nix/profiles/default/bin"],
        help="Where to look for nix-build, nix and nix-store (`<PATH>` is the environment's PATH).",
        advanced=True,
    )

    publish_dry_run = BoolOption(
        default=False,
        help=softwrap(
            """
            `pants publish` only lists, per image and registry, the blobs, manifests and tags it
            would send, after asking the registry what it holds (HEAD requests only,
            `layerforge push --dry-run`); nothing is pushed.
            """
        ),
    )
    sign_key = StrOption(
        default="",
        help=softwrap(
            """
            `pants publish` signs every manifest and index it pushes with this ECDSA P-256 key,
            in cosign's format (`sha256-<hex>.sig`), and attests each image with the SLSA
            provenance and SBOMs its layout holds (`sha256-<hex>.att`): a PKCS#8 PEM file or a
            key in cosign's encrypted format (its password in `COSIGN_PASSWORD`), by path
            (relative to the build root, or absolute) or `env://VAR` for a PEM held in `VAR`.
            Only the push processes see the key and its password; neither enters a cache key or
            a log.
            """
        ),
    )
    source_revision = StrOption(
        default="",
        help=softwrap(
            """
            The source revision (git commit) `pants publish` records in the provenance it
            attests when `sign_key` is set, e.g. `--layerforge-source-revision=$GITHUB_SHA`.
            """
        ),
    )

    publish_records = BoolOption(
        default=True,
        help=softwrap(
            """
            `pants publish` adds every push (references, digest, bytes pushed, mounted or
            skipped) to `dist/<output_path>.publish.layerforge.json` (docs/records.md).
            """
        ),
    )

    runtime = StrOption(
        default="",
        help=softwrap(
            """
            Container runtime of `pants run` for image targets: `docker`, `podman` or a path to
            either. Empty: `$LAYERFORGE_RUNTIME`, else docker when its daemon answers, else podman.
            """
        ),
    )
    runtime_options = StrListOption(
        help=softwrap(
            """
            Global arguments of the runtime for `pants run`, before its subcommand, one argument
            each (e.g. `["--root=/srv/podman", "--storage-driver=vfs"]`, or `["--host=ssh://h"]`
            for docker).
            """
        ),
    )
    run_options = StrListOption(
        help=softwrap(
            """
            Extra arguments of the runtime's `run` for `pants run`, one argument each (e.g.
            `["--network=none", "--runtime=runc"]`); `--rm -i` (and `-t` on a terminal) are always given.
            """
        ),
    )

    unikraft_run_options = StrListOption(
        help=softwrap(
            """
            Options of `layerforge unikraft-run` for `pants run` of unikraft_image targets, one
            argument each: `--memory=128M`, `--accel=auto` (KVM when usable; emulation by default),
            `--qemu=PATH`, `--qemu-option=ARG`.
            """
        ),
    )

    remote_cache_speculation_delay = IntOption(
        default=5000,
        help=softwrap(
            """
            With a remote cache, milliseconds to wait for a cache hit before also building a layer
            locally (Pants' default of 0 starts every build at once and cancels it on a hit).
            """
        ),
        advanced=True,
    )

    def registries(self) -> Registries:
        return Registries.from_dict(self._registries)


def signing_env_names(tool: Layerforge) -> tuple[str, ...]:
    """The variables the push processes need to sign: the password, and the key's own when
    `sign_key` is `env://VAR`."""
    if not tool.sign_key:
        return ()
    own = (tool.sign_key[len(ENV_KEY_PREFIX) :],) if tool.sign_key.startswith(ENV_KEY_PREFIX) else ()
    return (SIGN_PASSWORD_ENV, *own)

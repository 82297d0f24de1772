"""`layerforge load` and `layerforge run` with a real runtime (podman + runc): images tagged
NAME:TAG, loads that send no layer the runtime already has, arguments, stdin, terminals, exit
status, and the image's user, working directory and environment."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
from pathlib import Path

import pytest

from layerforge.runtime import option_names
from tests.helpers import assert_one_line_error, image_parts, layerforge_bin, on_a_terminal, run_cli
from tests.nix_support import IMAGES_NIX, build, nix_image
from tests.runtime_support import RUN_FLAGS, Podman, assert_runs_as_configured, parse_probe, probe_script

pytestmark = pytest.mark.usefixtures("nix_cli_env")
RUN = [f"--run-option={f}" for f in RUN_FLAGS]


def app_image(out: Path, version: str = "1.0", *extra: str) -> Path:
    busybox = build("busyboxPkg")
    nix_image(
        "--nix-file", IMAGES_NIX, "-A", "app", "--argstr", "appVersion", version, "--copy-to-root", busybox,
        "--out", out, "--tag", "1.0", "--entrypoint", f"{build('app', appVersion=version)}/bin/hello", *extra,
    )  # fmt: skip
    return out


def layer_blobs(layout: Path, ref: str = "1.0") -> set[Path]:
    return {layout / "blobs" / "sha256" / d["digest"].split(":")[1] for d in image_parts(layout, ref)[1]["layers"]}


def test_second_load_sends_no_layer_twice(tmp_path: Path, podman: Podman) -> None:
    v1, v2 = app_image(tmp_path / "v1"), app_image(tmp_path / "v2", "2.0")
    loaded = run_cli("load", *podman.layerforge_flags(), "--tag", "lf/app:1", f"{v1}:1.0")
    config = image_parts(v1, "1.0")[1]["config"]["digest"]
    assert loaded.stdout.split() == ["podman", "lf/app:1", config]
    assert podman.image_names()["localhost/lf/app:1"] == config.split(":")[1][:12]
    # v2 shares every layer but the app's: without the shared layers' blobs its load must
    # still succeed, so the runtime read none of them.
    shared = {p.name for p in layer_blobs(v1)} & {p.name for p in layer_blobs(v2)}
    assert len(shared) == len(layer_blobs(v2)) - 1, shared
    stripped = tmp_path / "v2-stripped"
    shutil.copytree(v2, stripped)
    for name in shared:
        (stripped / "blobs" / "sha256" / name).unlink()
    run_cli("load", *podman.layerforge_flags(), "--tag", "lf/app:2", f"{stripped}:1.0")
    assert podman.run_image("lf/app:2").stdout == "hello from libgreet\napp 2.0\n"
    # The same image again, with no layer blob at all.
    bare = tmp_path / "v1-bare"
    shutil.copytree(v1, bare)
    for blob in layer_blobs(bare):
        blob.unlink()
    run_cli("load", *podman.layerforge_flags(), "--tag", "lf/app:1-again", f"{bare}:1.0")
    # A storage without those layers has to read them: the stripped layout cannot load there.
    with Podman() as fresh:
        failed = run_cli("load", *fresh.layerforge_flags(), "--tag", "lf/app:2", f"{stripped}:1.0", check=False)
        assert_one_line_error(failed, "layerforge load: error: podman pull failed")
        assert "localhost/lf/app:2" not in fresh.image_names()
    # Only the requested names remain: the temporary path name podman gave the image is gone.
    assert {n for n in podman.image_names() if "layerforge-load" in n} == set()
    # ... and so is the symlink it was reached through.
    links = [p for p in Path("/tmp").glob("layerforge-load-*") if p.is_symlink()]
    assert not [p for p in links if p.resolve() in (v1.resolve(), stripped.resolve(), bare.resolve())], links


def test_links_of_killed_loads_are_removed(tmp_path: Path, podman: Podman) -> None:
    image = app_image(tmp_path / "img")
    dead = subprocess.run(["sh", "-c", "echo $$"], capture_output=True, text=True, check=True).stdout.strip()
    stale = Path("/tmp", f"layerforge-load-{dead}-{'ab' * 8}")
    live = Path("/tmp", f"layerforge-load-{os.getpid()}-{'cd' * 8}")
    for link in (stale, live):
        link.symlink_to(image)
    try:
        run_cli("load", *podman.layerforge_flags(), "--tag", "lf/stale:1", f"{image}:1.0")
        assert not stale.is_symlink(), "a dead process's link is removed"
        assert live.is_symlink(), "a live process's link is kept"
    finally:
        for link in (stale, live):
            link.unlink(missing_ok=True)


def test_run_passes_arguments_stdin_and_exit_status(tmp_path: Path, podman: Podman) -> None:
    image = app_image(tmp_path / "img")
    flags = [*podman.layerforge_flags(), *RUN, "--tag", "lf/run:1"]
    assert run_cli("run", *flags, f"{image}:1.0").stdout == "hello from libgreet\napp 1.0\n"
    shell = [*flags, "--run-option=--entrypoint=/bin/sh", f"{image}:1.0", "--"]
    out = run_cli("run", *shell, "-c", 'echo "$#:$1:$2"; exit 7', "sh", "a b", "--help", check=False)
    assert (out.returncode, out.stdout) == (7, "2:a b:--help\n"), out.stderr
    piped = subprocess.run([layerforge_bin(), "run", *shell, "-c", "cat; [ -t 0 ] || echo notty"], input="data\n",
                           capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert (piped.returncode, piped.stdout) == (0, "data\nnotty\n"), piped.stderr
    # On a terminal the container gets one.
    code, output = on_a_terminal([layerforge_bin(), "run", *shell, "-c", "[ -t 0 ] && [ -t 1 ] && echo tty"])
    # (conmon may write a NUL to the terminal after the output: only the lines count.)
    lines = output.replace("\r", "").replace("\0", "").splitlines()
    assert code == 0 and lines and lines[-1] == "tty", output


def test_run_sees_the_images_user_workdir_and_env(tmp_path: Path, podman: Podman) -> None:
    image = app_image(tmp_path / "img", "1.0", "--user", "app", "--workdir", "/home/app", "--env", "GREETING=hi")
    busybox = f"{build('busyboxPkg')}/bin/busybox"
    flags = [*podman.layerforge_flags(), *RUN, "--tag", "lf/user:1", f"--run-option=--entrypoint={busybox}"]
    probe = parse_probe(run_cli("run", *flags, f"{image}:1.0", "sh", "-c", probe_script(busybox)).stdout)
    assert_runs_as_configured(probe, image_parts(image, "1.0")[2], uid=1000, gid=1000, home="/home/app")
    assert probe.env["GREETING"] == "hi"


def test_runtime_choice(tmp_path: Path, podman: Podman) -> None:
    image = app_image(tmp_path / "img")
    # docker is not answering (no daemon at that socket): podman is used.
    env = {**_env(), "DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"}
    opts = [f"--runtime-option={f}" for f in podman.global_flags()]
    auto = run_cli("load", *opts, "--tag", "lf/auto:1", f"{image}:1.0", env=env)
    assert auto.stdout.startswith("podman lf/auto:1 ")
    named = run_cli("load", *opts, "--tag", "lf/env:1", f"{image}:1.0", env={**env, "LAYERFORGE_RUNTIME": "podman"})
    assert named.stdout.startswith("podman ")
    bad = run_cli("load", "--runtime", "rkt\x1b[31m", f"{image}:1.0", check=False)
    assert bad.returncode == 2 and "\x1b" not in bad.stderr
    assert_one_line_error(bad, "--runtime", "neither docker nor podman")
    missing = run_cli("load", "--runtime", str(tmp_path / "podman"), f"{image}:1.0", check=False)
    assert missing.returncode == 1
    assert_one_line_error(missing, "--runtime", "not installed")


def test_names_come_from_the_layout_or_tag(tmp_path: Path, podman: Podman) -> None:
    image = app_image(tmp_path / "img")
    untagged = run_cli("load", *podman.layerforge_flags(), f"{image}:1.0", check=False)
    assert untagged.returncode == 2
    assert_one_line_error(untagged, "--tag", "no repository name")
    bad = run_cli("load", *podman.layerforge_flags(), "--tag", "Upper/Case:1", f"{image}:1.0", check=False)
    assert_one_line_error(bad, "--tag", "not a docker image name")
    named = tmp_path / "named"
    nix_image("--store-path", build("busyboxPkg"), "--out", named, "--tag", "lf/named:2.0")
    run_cli("load", *podman.layerforge_flags(), str(named))
    assert "localhost/lf/named:2.0" in podman.image_names()


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("LAYERFORGE_RUNTIME", "DOCKER_HOST")}


def test_the_index_entrys_image_name_is_used_only_when_it_is_a_docker_name(tmp_path: Path, podman: Podman) -> None:
    image = app_image(tmp_path / "img")
    index_file = image / "index.json"
    index = json.loads(index_file.read_text())

    def named(name: str) -> None:
        index["manifests"][0]["annotations"]["io.containerd.image.name"] = name
        index_file.write_text(json.dumps(index))

    named("lf/from-index:3")
    run_cli("load", *podman.layerforge_flags(), f"{image}:1.0")
    assert "localhost/lf/from-index:3" in podman.image_names()
    exported = run_cli("export-docker", image, "--out", tmp_path / "a.tar")
    assert exported.stdout.split()[-1] == "lf/from-index:3"
    for bad in ("Evil\x1b]0;x\x07:1", "lf/no-tag", "lf/x:1\n"):
        named(bad)
        refused = run_cli("load", *podman.layerforge_flags(), f"{image}:1.0", check=False)
        assert refused.returncode == 2 and "\x1b" not in refused.stderr
        assert_one_line_error(refused, "no repository name")
        assert run_cli("export-docker", image, "--out", tmp_path / "b.tar").stdout.split()[-1] == "(untagged)"


def test_nix_assemble_refuses_a_bad_image_name(tmp_path: Path) -> None:
    bad = run_cli("nix-assemble", "--plan", tmp_path / "none.json", "--out", tmp_path / "o", "--image-name", "A:1",
                  check=False)  # fmt: skip
    assert bad.returncode == 2
    assert_one_line_error(bad, "--image-name", "'A:1' is not a docker image name")
    assert not (tmp_path / "o").exists()


#: podman's run flags of this host without the resource limits (tests/runtime_support.RUN_FLAGS
#: sets them, as users had to before `layerforge run` passed the host's own).
NO_LIMITS = [f"--run-option={f}" for f in RUN_FLAGS if not f.startswith("--ulimit")]


def test_run_gives_podman_the_hosts_limits_where_its_defaults_exceed_them(tmp_path: Path, podman: Podman) -> None:
    """Rootful podman asks RLIMIT_NOFILE 1048576 (and RLIMIT_NPROC 4194304) of runc, above this
    host's hard limits, which runc may not raise: without --ulimit the container gets the
    host's hard limits and runs."""
    image = app_image(tmp_path / "img")
    flags = [*podman.layerforge_flags(), *NO_LIMITS, "--tag", "lf/limits:1", "--run-option=--entrypoint=/bin/sh"]
    out = run_cli("run", *flags, f"{image}:1.0", "--", "-c", "ulimit -Hn; ulimit -Hu", check=False)
    hard_nofile, hard_nproc = (resource.getrlimit(r)[1] for r in (resource.RLIMIT_NOFILE, resource.RLIMIT_NPROC))
    assert out.returncode == 0, out.stderr
    # nproc no higher than the kernel's pid_max (see runtime/host_limits.py)
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    hard_nproc = pid_max if hard_nproc == resource.RLIM_INFINITY else min(hard_nproc, pid_max)
    pairs = ((hard_nofile, 1048576), (hard_nproc, 4194304))
    expected = [min(h, d) if h != resource.RLIM_INFINITY else d for h, d in pairs]
    assert [int(v) for v in out.stdout.split()] == expected, out.stdout


@pytest.mark.parametrize("pants", [False, True])
def test_a_runtime_failure_is_one_line_naming_the_runtime_the_image_and_the_fix(
    tmp_path: Path, podman: Podman, pants: bool
) -> None:
    """A limit the host cannot give (as podman's default nofile on this host was): runc refuses
    to start the container; one line names podman, the image, runc's error and the setting to
    change, in the terms of the front that set it (the CLI's flag, or Pants' option)."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY or hard >= 1 << 20:
        pytest.skip("the host's nofile hard limit is not below what the test asks")
    image = app_image(tmp_path / "img")
    flags = [
        *podman.layerforge_flags(),
        *NO_LIMITS,
        "--tag",
        "lf/fail:1",
        "--run-option=--ulimit=nofile=1048576:1048576",
    ]
    env = {**_env(), "LAYERFORGE_OPTION_NAMES": "pants"} if pants else None
    out = run_cli("run", *flags, f"{image}:1.0", check=False, env=env)
    assert out.returncode in (125, 126, 127), out.stderr
    [line] = [line for line in out.stderr.splitlines() if line.startswith("layerforge run: ")]
    assert line.startswith(f"layerforge run: podman could not run lf/fail:1 (exit {out.returncode}): "), line
    assert "error setting rlimit type 7" in line, line
    fix = (
        '[layerforge].run_options = ["--ulimit=nofile=1024:1024"]'
        if pants
        else "--run-option=--ulimit=nofile=1024:1024"
    )
    assert line.endswith(
        f"the host's hard limit for nofile is below what the container asks: set a lower one, e.g. {fix}"
    )


def test_the_container_status_is_passed_on_without_a_word(tmp_path: Path, podman: Podman) -> None:
    image = app_image(tmp_path / "img")
    flags = [*podman.layerforge_flags(), *NO_LIMITS, "--tag", "lf/status:1", "--run-option=--entrypoint=/bin/sh"]
    out = run_cli("run", *flags, f"{image}:1.0", "--", "-c", "echo oops >&2; exit 125", check=False)
    assert (out.returncode, out.stderr.strip()) == (125, "oops"), "the container's own 125 ... is its own"


def test_option_names_under_pants_are_the_plugins() -> None:
    """The variable the plugin sets for `pants run` is the one the tool reads."""
    run_py = (Path(__file__).resolve().parent.parent / "pants-plugins/layerforge_pants/goals/run.py").read_text()
    assert f'OPTION_NAMES = "{option_names.ENV}"' in run_py

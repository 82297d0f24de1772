"""`pip install .` from the repository root builds the native module and installs the native
`layerforge` command, which runs the Python part of the CLI, on the oldest supported CPython
(3.9) when the machine has one; `pip wheel .` of a clean clone (no manual step: the in-tree
build backend, build_backend/, builds the command) makes a wheel holding it, and the sdist
holds everything the wheel is built from."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
import tomllib

from tests.dist_support import clean_clone, dist_output
from tests.helpers import TEST_CACHE, machine_lock, run

REPO = Path(__file__).resolve().parent.parent
#: cargo's target directory for the wheel built from a clean clone: kept in the user's cache
#: between runs, so CI's second run (and a developer's) only rebuilds what changed instead of
#: every crate in release mode (the clone is new each time, the target directory is not).
WHEEL_TARGET = TEST_CACHE / "wheel-target"


def oldest_python() -> str:
    candidates = [*sorted(glob.glob("/root/.pyenv/versions/3.9*/bin/python3.9")), "/usr/bin/python3.9"]
    for c in candidates:
        if os.access(c, os.X_OK):
            return c
    return sys.executable


def test_pip_install_from_repo_root(tmp_path: Path) -> None:
    python = oldest_python()
    venv = tmp_path / "venv"
    run(python, "-m", "venv", venv)
    run(REPO / "scripts" / "build-command")
    proc = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--disable-pip-version-check", "-q", str(REPO)],
        capture_output=True, text=True, timeout=1200, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (venv / "bin" / "layerforge").read_bytes()[:4] == b"\x7fELF", "the command is the native binary"
    version = run(venv / "bin" / "layerforge", "--version").stdout
    assert version.startswith("layerforge ")
    root = tmp_path / "root"
    root.mkdir()
    (root / "hello").write_text("hi\n")
    out = run(venv / "bin" / "layerforge", "dir-image", root, "--out", tmp_path / "layout").stdout
    assert out.split()[-1].startswith("sha256:")
    run("skopeo", "inspect", f"oci:{tmp_path / 'layout'}:latest")


def test_every_module_imports_on_the_oldest_python() -> None:
    """Annotations are postponed, but runtime expressions (type aliases, defaults) are not:
    every module must import on 3.9 (the wheel is abi3 for >= 3.9, and Pants runs on 3.9)."""
    script = (
        "import importlib, pkgutil, sys; sys.path.insert(0, sys.argv[1]); import layerforge\n"
        "failures = []\n"
        "for m in pkgutil.walk_packages(layerforge.__path__, 'layerforge.'):\n"
        "    try: importlib.import_module(m.name)\n"
        "    except Exception as e: failures.append(f'{m.name}: {e!r}')\n"
        "print('\\n'.join(failures)); sys.exit(1 if failures else 0)"
    )
    proc = subprocess.run(
        [oldest_python(), "-c", script, str(REPO / "python")], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_pip_wheel_of_a_clean_clone_holds_the_native_command(tmp_path: Path) -> None:
    src = clean_clone(tmp_path)
    out = tmp_path / "out"
    env = {**os.environ, "CARGO_TARGET_DIR": str(WHEEL_TARGET)}
    with machine_lock("wheel-target"):
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "-w", str(out), "."],
            cwd=src, env=env, capture_output=True, text=True, timeout=1800, check=False,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [wheel] = out.glob("layerforge-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        version = wheel.name.split("-")[1]
        command = f"layerforge-{version}.data/scripts/layerforge"
        assert command in names, sorted(names)
        assert z.read(command)[:4] == b"\x7fELF", "the command is the native binary"
        assert (z.getinfo(command).external_attr >> 16) & 0o111, "the command is executable"
    assert {"layerforge/__init__.py", "layerforge/_native.pyi", "layerforge/py.typed"} <= names
    assert any(n.startswith("layerforge/_native.") and n.endswith(".so") for n in names), sorted(names)
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv)
    run(venv / "bin" / "pip", "install", "--no-deps", "--disable-pip-version-check", "-q", wheel)
    assert (venv / "bin" / "layerforge").read_bytes()[:4] == b"\x7fELF"
    assert run(venv / "bin" / "layerforge", "--version").stdout.startswith("layerforge ")
    assert run(venv / "bin" / "python", "-m", "layerforge", "--version").stdout.startswith("layerforge ")


def test_sdist_of_a_clean_clone_holds_what_the_wheel_is_built_from(tmp_path: Path) -> None:
    """The sdist through the build backend's hook, called as a PEP 517 frontend calls it
    (backend-path first on sys.path, in the source tree): no compile."""
    src = clean_clone(tmp_path)
    build_system = tomllib.loads((src / "pyproject.toml").read_text())["build-system"]
    hook = (
        "import importlib, sys\n"
        "sys.path[:0] = sys.argv[3:]\n"
        "print(importlib.import_module(sys.argv[1]).build_sdist(sys.argv[2]))"
    )
    out = tmp_path / "out"
    out.mkdir()
    # maturin's hook runs the `maturin` command of the test's environment.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(
        [sys.executable, "-c", hook, build_system["build-backend"], str(out), *build_system["backend-path"]],
        cwd=src, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    sdist = out / proc.stdout.strip().splitlines()[-1]
    with tarfile.open(sdist) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
        cargo_toml = t.extractfile(f"{sdist.name.removesuffix('.tar.gz')}/Cargo.toml")
        assert cargo_toml is not None
        workspace = tomllib.loads(cargo_toml.read().decode())
    members = workspace["workspace"]["members"]
    assert "rust/layerforge-cli" in members, members
    for member in members:
        assert f"{member}/Cargo.toml" in names, member
        assert f"{member}/src/lib.rs" in names or f"{member}/src/main.rs" in names, member
    assert {"Cargo.lock", "Cargo.toml", "pyproject.toml", "build_backend/layerforge_build.py",
            "python/layerforge/__init__.py", "python/layerforge/_native.pyi"} <= names  # fmt: skip
    assert not any(n.startswith("python/layerforge.data") for n in names), "no built command in the sdist"
    assert not (src / "python" / "layerforge.data").exists(), "the hook leaves no data directory behind"


#: The newest glibc a release wheel may need (manylinux_2_28).
MAX_GLIBC = (2, 28)


def glibc_needed(elf: Path) -> tuple[int, int]:
    """The newest GLIBC_x.y symbol version that ELF file references (objdump -T)."""
    found = re.findall(r"GLIBC_(\d+)\.(\d+)", run("objdump", "-T", elf).stdout)
    assert found, f"{elf}: objdump -T lists no GLIBC symbol versions"
    return max((int(a), int(b)) for a, b in found)


@pytest.fixture(scope="module")
def dist() -> Path:
    """scripts/dist's OUTDIR for a clean clone of HEAD (tests/dist_support.py)."""
    return dist_output()


def test_dist_writes_a_manylinux_wheel_and_the_sdist(dist: Path) -> None:
    [wheel] = dist.glob("layerforge-*.whl")
    [sdist] = dist.glob("layerforge-*.tar.gz")
    version = wheel.name.split("-")[1]
    assert sdist.name == f"layerforge-{version}.tar.gz"
    auditwheel = Path((dist / "tools").read_text()) / "bin" / "auditwheel"
    show = " ".join(run(auditwheel, "show", wheel).stdout.split())
    tags = re.findall(r'consistent with the following platform tag: "manylinux_(\d+)_(\d+)_x86_64"', show)
    assert tags, show
    assert (int(tags[0][0]), int(tags[0][1])) <= MAX_GLIBC, show
    with zipfile.ZipFile(wheel) as z:
        assert z.read(f"layerforge-{version}.data/scripts/layerforge")[:4] == b"\x7fELF"


def test_dist_writes_the_pants_plugins_wheel_standing_alone(dist: Path) -> None:
    """layerforge-pants: pure Python, the project's version, every package of the plugin and
    its default lockfile, and the tool's option table and host rules as files of its own
    (byte for byte the tool's), so the wheel needs nothing from this checkout."""
    [tool] = dist.glob("layerforge-*.whl")
    version = tool.name.split("-")[1]
    [plugin] = dist.glob("layerforge_pants-*.whl")
    assert plugin.name == f"layerforge_pants-{version}-py3-none-any.whl"
    root = Path(__file__).resolve().parent.parent
    with zipfile.ZipFile(plugin) as z:
        names = set(z.namelist())
        for package in ("", "goals/", "goals/engine/", "nix/", "unikraft/", "nydus/", "index/", "remote/"):
            assert f"layerforge_pants/{package}__init__.py" in names, package
        assert "layerforge_pants/layerforge.lock" in names
        assert (
            z.read("layerforge_pants/goals/option_rules.py")
            == (root / "python/layerforge/option_rules.py").read_bytes()
        )
        assert z.read("layerforge_pants/goals/hosts.py") == (root / "python/layerforge/trust/hosts.py").read_bytes()
        assert not any(n.startswith("rule_tests/") for n in names)
        lockfile = z.read("layerforge_pants/layerforge.lock").decode()
    # The tool's default lockfile pins the tool's wheel next to it, by name and sha256, under
    # the path mapping README's pants.toml sets, with the header Pants checks it against.
    lines = lockfile.splitlines()
    begin, end = (
        lines.index("// --- BEGIN PANTS LOCKFILE METADATA: DO NOT EDIT OR REMOVE ---"),
        lines.index("// --- END PANTS LOCKFILE METADATA ---"),
    )
    header = json.loads("\n".join(line.removeprefix("// ") for line in lines[begin + 1 : end]))
    assert header["generated_with_requirements"] == [f"layerforge=={version}"]
    assert header["valid_for_interpreter_constraints"] == ["CPython<3.14,>=3.9"]
    lock = json.loads("\n".join(line for line in lockfile.splitlines() if not line.startswith("//")))
    [artifact] = [a for r in lock["locked_resolves"] for q in r["locked_requirements"] for a in q["artifacts"]]
    assert artifact["url"] == f"file://${{LAYERFORGE_WHEELS}}/{tool.name}"
    assert (artifact["algorithm"], artifact["hash"]) == ("sha256", hashlib.sha256(tool.read_bytes()).hexdigest())


@pytest.mark.parametrize("minor", ["9", "13"])
def test_dist_wheel_installs_and_runs_on_cpython(dist: Path, tmp_path: Path, minor: str) -> None:
    pythons = sorted(glob.glob(f"/root/.pyenv/versions/3.{minor}.*/bin/python3.{minor}"))
    if not pythons:
        pytest.skip(f"no CPython 3.{minor} in /root/.pyenv/versions/3.{minor}.* (scripts/test installs it)")
    [wheel] = dist.glob("layerforge-*.whl")
    version = wheel.name.split("-")[1]
    venv = tmp_path / "venv"
    run(pythons[-1], "-m", "venv", venv)
    run(venv / "bin" / "pip", "install", "--no-deps", "--disable-pip-version-check", "-q", wheel)
    command = venv / "bin" / "layerforge"
    with zipfile.ZipFile(wheel) as z:
        shipped = z.read(f"layerforge-{version}.data/scripts/layerforge")
    assert command.read_bytes() == shipped, "the installed command is the wheel's native one"
    assert glibc_needed(command) <= MAX_GLIBC
    [module] = (venv / "lib").glob(f"python3.{minor}/site-packages/layerforge/_native.*.so")
    assert glibc_needed(module) <= MAX_GLIBC
    # Neither the venv's bin/ on PATH nor PYTHONPATH: the native command finds its interpreter.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "LAYERFORGE_PYTHON")}
    env["PATH"] = "/usr/bin:/bin"
    expected = f"layerforge {version}"
    assert run(command, "--version", env=env, cwd=tmp_path).stdout.strip() == expected
    assert run(venv / "bin" / "python", "-m", "layerforge", "--version", cwd=tmp_path).stdout.strip() == expected

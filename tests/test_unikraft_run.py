"""`layerforge unikraft-run`: unikernel packages booted in QEMU as `kraft run` does, the console
on stdout, the package's Cmd or the given arguments on the command line, the guest's exit
status where QEMU reports one (isa-debug-exit)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.helpers import assert_one_line_error, run, run_cli
from tests.pants_support import REPO

EXAMPLE = REPO / "examples" / "unikraft"
GREETING = "Hello from a layerforge unikernel"


def example_kernel(tmp_path: Path, source: str) -> Path:
    """The example's multiboot kernel assembled as examples/unikraft/BUILD does."""
    (tmp_path / "k.S").write_text(source)
    run("as", "--32", "-o", tmp_path / "k.o", tmp_path / "k.S")
    kernel = tmp_path / "k_qemu-x86_64"
    run("ld", "-m", "elf_i386", "-N", "-Ttext=0x100000", "-e", "_start", "--build-id=none", "--no-warn-rwx-segments",
        "-o", kernel, tmp_path / "k.o")  # fmt: skip
    return kernel


def package(out: Path, kernel: Path, *extra: str) -> Path:
    run_cli("unikraft-image", "--kernel", kernel, "--arch", "x86_64", "--plat", "qemu", "--out", out, *extra)
    return out


def boot(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("unikraft-run", *args, check=False, stdin=subprocess.DEVNULL)


def test_the_example_kernel_greets_and_the_guests_exit_status_is_returned(tmp_path: Path) -> None:
    source = (EXAMPLE / "hello.S").read_text()
    (tmp_path / "a").mkdir()
    kernel = example_kernel(tmp_path / "a", source)
    layout = package(tmp_path / "pkg", kernel, "--kconfig", str(EXAMPLE / "hello.config"), "--rootfs",
                     str(EXAMPLE / "rootfs"), "--cmd", '["-v"]')  # fmt: skip
    out = boot(f"{layout}:latest")
    assert out.returncode == 0 and GREETING in out.stdout, (out.returncode, out.stdout[-500:], out.stderr)
    # The same kernel, ending with `outb 5, 0xf4` instead of a triple fault: QEMU exits 2*5+1.
    debug_exit = "2:      mov $0xf4, %dx\n        mov $5, %al\n        out %al, %dx\n"
    exiting = source.replace("2:      lidt empty_idt", debug_exit)
    assert exiting != source
    (tmp_path / "b").mkdir()
    layout = package(tmp_path / "pkg5", example_kernel(tmp_path / "b", exiting))
    out = boot(f"{layout}:latest")
    assert out.returncode == 11 and GREETING in out.stdout, (out.returncode, out.stdout[-500:], out.stderr)


#: The example kernel, printing the multiboot command line (``[...]``) after its greeting.
ECHO_CMDLINE = """2:      mov 16(%ebx), %esi
        mov $0x5b, %al
        out %al, %dx
4:      lodsb
        test %al, %al
        jz 5f
        out %al, %dx
        jmp 4b
5:      mov $0x5d, %al
        out %al, %dx
        lidt empty_idt"""


def test_cmd_and_arguments_reach_the_guest(tmp_path: Path) -> None:
    source = (EXAMPLE / "hello.S").read_text().replace("2:      lidt empty_idt", ECHO_CMDLINE)
    layout = package(tmp_path / "pkg", example_kernel(tmp_path, source), "--cmd", '["from-cmd", "two"]')
    out = boot(f"{layout}:latest")
    assert out.returncode == 0 and f"{GREETING}\n[" in out.stdout, (out.stdout[-500:], out.stderr)
    # QEMU puts the kernel's file name first.
    assert out.stdout.split("[", 1)[1].endswith("/kernel -- from-cmd two]"), out.stdout[-300:]
    out = boot("--kernel-arg=console=ttyS0", f"{layout}:latest", "--", "given", "--x")
    assert out.stdout.split("[", 1)[1].endswith("/kernel console=ttyS0 -- given --x]"), out.stdout[-300:]


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--memory=lots"], ["--memory", "'lots' is not a size"]),
        (["--qemu=/nonexistent/qemu"], ["--qemu", "is not installed"]),
        (["--arch=mips"], ["--arch", "unknown architecture"]),
    ],
)
def test_bad_options_are_one_line(tmp_path: Path, args: list[str], needles: list[str]) -> None:
    out = boot(*args, str(tmp_path / "none"))
    assert_one_line_error(out, *needles)


#: The example kernel, scanning PCI bus 0 after its greeting: an `N` for each network
#: controller (class 0x02) it finds, then `.` (third review, finding 5).
COUNT_NICS = """2:      xor %ecx, %ecx
6:      mov %ecx, %eax
        shl $11, %eax
        or $0x80000008, %eax
        mov $0xcf8, %dx
        outl %eax, %dx
        mov $0xcfc, %dx
        inl %dx, %eax
        shr $24, %eax
        cmp $0x02, %al
        jne 7f
        mov $COM1, %dx
        mov $0x4e, %al
        out %al, %dx
7:      inc %ecx
        cmp $32, %ecx
        jne 6b
        mov $COM1, %dx
        mov $0x2e, %al
        out %al, %dx
        lidt empty_idt"""


def test_the_guest_has_no_network_unless_asked_for(tmp_path: Path) -> None:
    """QEMU's default NIC (user-mode networking, `restrict=off`) would let the guest reach the
    host's loopback services through 10.0.2.2: none by default, `--nic` gives one."""
    source = (EXAMPLE / "hello.S").read_text().replace("2:      lidt empty_idt", COUNT_NICS)
    layout = package(tmp_path / "pkg", example_kernel(tmp_path, source))
    out = boot(f"{layout}:latest")
    assert out.returncode == 0 and f"{GREETING}\n." in out.stdout, (out.stdout[-300:], out.stderr)
    out = boot("--nic=user,model=e1000", f"{layout}:latest")
    assert out.returncode == 0 and f"{GREETING}\nN." in out.stdout, (out.stdout[-300:], out.stderr)
    out = boot("--nic=user", "--nic=user", f"{layout}:latest")
    assert f"{GREETING}\nNN." in out.stdout, (out.stdout[-300:], out.stderr)


@pytest.mark.parametrize("nic", ["-netdev", "", "user\nx"])
def test_a_nic_that_is_not_a_value_is_one_line(tmp_path: Path, nic: str) -> None:
    source = (EXAMPLE / "hello.S").read_text()
    layout = package(tmp_path / "pkg", example_kernel(tmp_path, source))
    assert_one_line_error(boot(f"--nic={nic}", f"{layout}:latest"), "--nic", "is not a QEMU -nic value")

//! Which machine an ELF executable or shared object was built for, checked against the
//! image's platform while a layer reads its files.
//!
//! Only the first 20 bytes of a file with an execute bit are looked at (`e_ident`, `e_type`,
//! `e_machine`), read with one `pread` just before the file is streamed into the archive,
//! from pages the archive is about to read anyway.

use std::os::unix::io::RawFd;

use crate::error::{Error, Result};

/// Bytes of an ELF header up to and including `e_machine`.
const HEAD: usize = 20;
const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;

/// A machine as an ELF header names it: `e_machine`, 64-bit class, little-endian data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElfMachine {
    pub machine: u16,
    pub is_64: bool,
    pub little_endian: bool,
}

/// OCI architecture names (`GOARCH`) and the ELF machine of their Linux executables.
const ARCHES: &[(&str, ElfMachine)] = &[
    ("amd64", m(0x3E, true, true)),
    ("arm64", m(0xB7, true, true)),
    ("arm", m(0x28, false, true)),
    ("386", m(0x03, false, true)),
    ("ppc64le", m(0x15, true, true)),
    ("s390x", m(0x16, true, false)),
    ("riscv64", m(0xF3, true, true)),
    ("mips64le", m(0x08, true, true)),
    ("loong64", m(0x102, true, true)),
];

const fn m(machine: u16, is_64: bool, little_endian: bool) -> ElfMachine {
    ElfMachine {
        machine,
        is_64,
        little_endian,
    }
}

impl ElfMachine {
    /// The machine of an OCI architecture name, or an error naming the known ones.
    pub fn of_arch(arch: &str) -> Result<Self> {
        ARCHES
            .iter()
            .find(|(name, _)| *name == arch)
            .map(|(_, machine)| *machine)
            .ok_or_else(|| {
                let known: Vec<&str> = ARCHES.iter().map(|(n, _)| *n).collect();
                Error::input(format!(
                    "no ELF machine is known for the architecture '{}' (known: {})",
                    arch.escape_debug(),
                    known.join(", ")
                ))
            })
    }

    /// The OCI architecture name, or the raw header values for a machine no image platform has.
    pub fn describe(&self) -> String {
        match ARCHES.iter().find(|(_, machine)| machine == self) {
            Some((name, _)) => (*name).to_string(),
            None => format!(
                "ELF machine {:#x} ({}-bit, {}-endian)",
                self.machine,
                if self.is_64 { 64 } else { 32 },
                if self.little_endian { "little" } else { "big" }
            ),
        }
    }

    /// The machine of an executable or shared object's header, None for anything else
    /// (not ELF, too short, a relocatable object or core file, an unknown class or encoding).
    pub fn of_header(head: &[u8]) -> Option<Self> {
        if head.len() < HEAD || head[..4] != *b"\x7fELF" {
            return None;
        }
        let is_64 = match head[4] {
            1 => false,
            2 => true,
            _ => return None,
        };
        let little_endian = match head[5] {
            1 => true,
            2 => false,
            _ => return None,
        };
        let half = |at: usize| {
            let b = [head[at], head[at + 1]];
            if little_endian {
                u16::from_le_bytes(b)
            } else {
                u16::from_be_bytes(b)
            }
        };
        if !matches!(half(16), ET_EXEC | ET_DYN) {
            return None;
        }
        Some(m(half(18), is_64, little_endian))
    }
}

/// What a layer's executables must be built for: the image's architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MachineCheck {
    pub expected: ElfMachine,
}

impl MachineCheck {
    pub fn for_arch(arch: &str) -> Result<Self> {
        Ok(MachineCheck {
            expected: ElfMachine::of_arch(arch)?,
        })
    }

    /// Check the open file `fd` (image path `path`, mode `mode`, `size` bytes): an executable
    /// whose ELF header names another machine is an error naming the path and both machines.
    pub fn check_fd(&self, fd: RawFd, path: &str, mode: u32, size: u64) -> Result<()> {
        if mode & 0o111 == 0 || size < HEAD as u64 {
            return Ok(());
        }
        let mut head = [0u8; HEAD];
        let mut got = 0usize;
        while got < HEAD {
            // SAFETY: reading into the unfilled tail of a local buffer.
            let r = unsafe {
                libc::pread(
                    fd,
                    head[got..].as_mut_ptr().cast(),
                    HEAD - got,
                    got as libc::off_t,
                )
            };
            if r < 0 {
                let err = std::io::Error::last_os_error();
                if err.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(Error::io(format!("cannot read '/{path}'"), err));
            }
            if r == 0 {
                return Ok(()); // shrank: the copy that follows reports it
            }
            got += r as usize;
        }
        self.check_header(&head, path)
    }

    pub fn check_header(&self, head: &[u8], path: &str) -> Result<()> {
        match ElfMachine::of_header(head) {
            Some(found) if found != self.expected => Err(Error::input(format!(
                "'/{}' is an ELF executable for {}, but the image's architecture is {}",
                path.escape_debug(),
                found.describe(),
                self.expected.describe()
            ))),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(class: u8, data: u8, e_type: u16, machine: u16) -> Vec<u8> {
        let mut h = b"\x7fELF".to_vec();
        h.extend([class, data, 1, 0]);
        h.extend([0u8; 8]);
        let enc = |v: u16| {
            if data == 2 {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        h.extend(enc(e_type));
        h.extend(enc(machine));
        h
    }

    #[test]
    fn names_every_known_arch_both_ways() {
        for (name, machine) in ARCHES {
            assert_eq!(ElfMachine::of_arch(name).unwrap(), *machine);
            assert_eq!(machine.describe(), *name);
            let h = header(
                if machine.is_64 { 2 } else { 1 },
                if machine.little_endian { 1 } else { 2 },
                ET_DYN,
                machine.machine,
            );
            assert_eq!(ElfMachine::of_header(&h), Some(*machine), "{name}");
        }
        let err = ElfMachine::of_arch("vax\n").unwrap_err().to_string();
        assert!(err.contains("'vax\\n'") && err.contains("arm64"), "{err}");
    }

    #[test]
    fn mismatch_names_path_and_both_machines() {
        let check = MachineCheck::for_arch("arm64").unwrap();
        let amd64 = header(2, 1, ET_EXEC, 0x3E);
        let err = check
            .check_header(&amd64, "nix/store/x-bb/bin/busybox")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "'/nix/store/x-bb/bin/busybox' is an ELF executable for amd64, but the image's architecture is arm64"
        );
        assert!(check
            .check_header(&header(2, 1, ET_DYN, 0xB7), "lib.so")
            .is_ok());
        // 32-bit arm code is not arm64, and an unknown machine is shown by its numbers.
        let err = check
            .check_header(&header(2, 2, ET_EXEC, 0x99), "a\x1bb")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ELF machine 0x99 (64-bit, big-endian)") && err.contains("a\\u{1b}b"),
            "{err}"
        );
    }

    #[test]
    fn ignores_what_is_no_executable() {
        let check = MachineCheck::for_arch("amd64").unwrap();
        for head in [
            header(2, 1, 1, 0xB7), // relocatable object
            header(2, 1, 4, 0xB7), // core file
            header(3, 1, 2, 0xB7), // unknown class
            header(2, 9, 2, 0xB7), // unknown encoding
            b"#!/bin/sh\necho hi\n\n\n".to_vec(),
            header(2, 1, 2, 0xB7)[..19].to_vec(),
        ] {
            assert!(check.check_header(&head, "f").is_ok(), "{head:?}");
        }
    }
}

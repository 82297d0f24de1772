//! What a caller asks to put in a layer.

use std::path::PathBuf;
use std::sync::Arc;

use super::Kind;
use crate::error::{Error, Result};

/// Metadata policy applied to every entry of a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryOptions {
    /// Modification time of every entry (SOURCE_DATE_EPOCH).
    pub mtime: u64,
    pub uid: u32,
    pub gid: u32,
    /// Keep setuid/setgid bits from disk; they are dropped unless asked for.
    pub keep_setuid: bool,
}

impl Default for EntryOptions {
    fn default() -> Self {
        EntryOptions {
            mtime: 1,
            uid: 0,
            gid: 0,
            keep_setuid: false,
        }
    }
}

/// One request. Destinations are image paths (leading `/` optional).
#[derive(Debug, Clone)]
pub enum SpecItem {
    /// A single filesystem object (a directory adds only itself). Symlinks are stored, not followed.
    Path { src: PathBuf, dest: String },
    /// A directory and everything below it, placed at `dest`.
    Tree { src: PathBuf, dest: String },
    /// A synthetic directory.
    Dir { dest: String, mode: u32 },
    /// A synthetic symlink.
    Symlink { dest: String, target: String },
    /// A synthetic regular file.
    File {
        dest: String,
        data: Arc<[u8]>,
        mode: u32,
    },
    /// A synthetic device node or fifo (`kind` is [`Kind::CharDevice`], [`Kind::BlockDevice`]
    /// or [`Kind::Fifo`]), as initramfs specs list them (`/dev/console c 5 1`).
    Node { dest: String, kind: Kind, mode: u32 },
}

/// Override of mode/owner for the entries whose absolute image path (`/nix/store/...`)
/// fully matches `pattern` (Rust `regex` syntax). Later rules override earlier ones, field by
/// field; a rule's mode replaces the permission bits (file type is kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermRule {
    pub pattern: String,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// Everything that goes into one layer.
#[derive(Debug, Clone, Default)]
pub struct LayerSpec {
    pub items: Vec<SpecItem>,
    pub options: EntryOptions,
    pub perm_rules: Vec<PermRule>,
}

impl LayerSpec {
    pub fn new(options: EntryOptions) -> Self {
        LayerSpec {
            items: Vec::new(),
            options,
            perm_rules: Vec::new(),
        }
    }

    pub fn add_path(&mut self, src: impl Into<PathBuf>, dest: impl Into<String>) -> &mut Self {
        self.items.push(SpecItem::Path {
            src: src.into(),
            dest: dest.into(),
        });
        self
    }

    pub fn add_tree(&mut self, src: impl Into<PathBuf>, dest: impl Into<String>) -> &mut Self {
        self.items.push(SpecItem::Tree {
            src: src.into(),
            dest: dest.into(),
        });
        self
    }

    pub fn add_dir(&mut self, dest: impl Into<String>, mode: u32) -> &mut Self {
        self.items.push(SpecItem::Dir {
            dest: dest.into(),
            mode,
        });
        self
    }

    pub fn add_symlink(&mut self, dest: impl Into<String>, target: impl Into<String>) -> &mut Self {
        self.items.push(SpecItem::Symlink {
            dest: dest.into(),
            target: target.into(),
        });
        self
    }

    pub fn add_perm_rule(&mut self, rule: PermRule) -> &mut Self {
        self.perm_rules.push(rule);
        self
    }

    /// Add a device node or fifo; any other kind is refused.
    pub fn add_node(
        &mut self,
        dest: impl Into<String>,
        kind: Kind,
        mode: u32,
    ) -> Result<&mut Self> {
        let dest = dest.into();
        if !matches!(
            kind,
            Kind::Fifo | Kind::CharDevice { .. } | Kind::BlockDevice { .. }
        ) {
            return Err(Error::input(format!(
                "'{dest}': a node must be a character device, block device or fifo, not a {}",
                kind.describe()
            )));
        }
        self.items.push(SpecItem::Node { dest, kind, mode });
        Ok(self)
    }

    pub fn add_file(
        &mut self,
        dest: impl Into<String>,
        data: impl Into<Arc<[u8]>>,
        mode: u32,
    ) -> &mut Self {
        self.items.push(SpecItem::File {
            dest: dest.into(),
            data: data.into(),
            mode,
        });
        self
    }
}

//! Errors of settings, by value: the setting, the bad value and the rule it breaks. The core
//! names no command-line flag or Pants field; its caller does (the Python module maps
//! [`Setting::name`] to its flag). The rules themselves are those of the tool's one table,
//! `python/layerforge/option_rules.py`; the cases of `tests/vectors/option_rules.json` hold
//! the core's checks (chunk sizes, compressors, digesters, prefetch paths, layer compression
//! and levels) to it.

use std::fmt;

/// A setting of a native build, as the table of option rules names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    ChunkSize,
    Compressor,
    Digester,
    Prefetch,
    ChunkDict,
    Compression,
    CompressionLevel,
}

impl Setting {
    /// The rule's name in the table (`nydus.chunk_size`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Setting::ChunkSize => "nydus.chunk_size",
            Setting::Compressor => "nydus.compressor",
            Setting::Digester => "nydus.digester",
            Setting::Prefetch => "nydus.prefetch",
            Setting::ChunkDict => "nydus.chunk_dict",
            Setting::Compression => "layer.compression",
            Setting::CompressionLevel => "layer.level",
        }
    }
}

/// `value` (as messages show it: text quoted, control characters escaped) breaks `rule`
/// (a phrase that follows the value: "is not an absolute path").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub setting: Setting,
    pub value: String,
    pub rule: String,
}

impl RuleError {
    /// A text value, quoted and escaped like Python's `repr` of a plain string.
    pub fn text(setting: Setting, value: &str, rule: impl Into<String>) -> Self {
        RuleError {
            setting,
            value: quoted(value),
            rule: rule.into(),
        }
    }

    /// A number.
    pub fn number(setting: Setting, value: impl fmt::Display, rule: impl Into<String>) -> Self {
        RuleError {
            setting,
            value: value.to_string(),
            rule: rule.into(),
        }
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.value, self.rule)
    }
}

/// Whether `c` is a character messages must not carry raw (C0, DEL, C1, line separators).
pub fn is_control(c: char) -> bool {
    let n = u32::from(c);
    n < 0x20 || (0x7f..0xa0).contains(&n) || n == 0x2028 || n == 0x2029
}

/// `'value'` with control characters and `\` escaped, cut at 200 characters.
pub fn quoted(value: &str) -> String {
    let mut out = String::from("'");
    for (i, c) in value.chars().enumerate() {
        if i == 200 {
            out.push_str("...");
            break;
        }
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if is_control(c) && u32::from(c) <= 0xff => {
                out.push_str(&format!("\\x{:02x}", u32::from(c)))
            }
            c if is_control(c) => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compress::Compression;
    use crate::rafs::algo::{validate_chunk_size, Compressor, Digester};
    use crate::rafs::convert::check_prefetch;
    use crate::Error;
    use serde_json::Value;

    const VECTORS: &str = include_str!("../../../tests/vectors/option_rules.json");

    fn cases(rule: &str) -> Vec<Value> {
        let doc: Value = serde_json::from_str(VECTORS).expect("the vectors parse");
        let all = doc["cases"].as_array().expect("cases").clone();
        let picked: Vec<Value> = all.into_iter().filter(|c| c["rule"] == rule).collect();
        assert!(picked.len() > 2, "vectors for {rule}");
        picked
    }

    /// The error names the setting and never a flag.
    fn by_value(e: Error, setting: Setting) -> RuleError {
        match e {
            Error::Rule(r) => {
                assert_eq!(r.setting, setting);
                assert!(!r.to_string().contains("--"), "{r}");
                assert!(!r.to_string().chars().any(is_control), "{r:?}");
                r
            }
            other => panic!("not a rule error: {other}"),
        }
    }

    #[test]
    fn chunk_sizes_follow_the_table() {
        for c in cases("nydus.chunk_size") {
            // The size grammar is the fronts'; the core gets bytes.
            let Some(bytes) = c["normal"].as_u64() else {
                continue;
            };
            let got = validate_chunk_size(bytes);
            assert_eq!(got.is_ok(), c["ok"] == true, "{c}");
            if let Err(e) = got {
                assert_eq!(by_value(e, Setting::ChunkSize).value, bytes.to_string());
            }
        }
    }

    #[test]
    fn compressors_and_digesters_follow_the_table() {
        for c in cases("nydus.compressor") {
            let v = c["value"].as_str().expect("text");
            let got = Compressor::parse(v);
            assert_eq!(got.is_ok(), c["ok"] == true, "{c}");
            if let Err(e) = got {
                assert_eq!(by_value(e, Setting::Compressor).value, quoted(v));
            }
        }
        for c in cases("nydus.digester") {
            let v = c["value"].as_str().expect("text");
            let got = Digester::parse(v);
            assert_eq!(got.is_ok(), c["ok"] == true, "{c}");
            if let Err(e) = got {
                by_value(e, Setting::Digester);
            }
        }
    }

    #[test]
    fn prefetch_paths_follow_the_table() {
        for c in cases("nydus.prefetch") {
            let v = c["value"].as_str().expect("text");
            let got = check_prefetch(v);
            assert_eq!(got.is_ok(), c["ok"] == true, "{c}");
            if let Err(e) = got {
                assert_eq!(by_value(e, Setting::Prefetch).value, quoted(v));
            }
        }
    }

    #[test]
    fn layer_compressions_and_levels_follow_the_table() {
        for c in cases("layer.compression") {
            let v = c["value"].as_str().expect("text");
            let got = Compression::parse(v, None);
            assert_eq!(got.is_ok(), c["ok"] == true, "{c}");
            if let Err(e) = got {
                by_value(e, Setting::Compression);
            }
        }
        for c in cases("layer.level") {
            let compression = c["compression"].as_str().expect("compression");
            let level = c["value"].as_i64().map(|l| l as i32);
            let got = Compression::parse(compression, level);
            assert_eq!(got.is_ok(), c["ok"] == true, "{c}");
            if let Err(e) = got {
                by_value(e, Setting::CompressionLevel);
            }
        }
    }

    #[test]
    fn values_are_quoted_like_python() {
        assert_eq!(quoted("/etc"), "'/etc'");
        assert_eq!(quoted("/a\nb\u{1b}[0m"), "'/a\\nb\\x1b[0m'");
        assert_eq!(quoted("a\u{2028}"), "'a\\u2028'");
    }
}

//! The arguments of `layerforge push`, read the way the Python parser reads them, but only
//! in their plain forms: anything else (help, `--chunk-size`, `-v`, abbreviations, bad
//! values) is left to Python, which also reports the errors.

use std::ffi::OsString;

use crate::layout::LayoutRef;
use crate::name_grammar::components_valid;

/// A registry target `REGISTRY/REPO[:TAG]` (no digest: those pushes go to Python).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
}

#[derive(Debug)]
pub struct PushArgs {
    pub source: LayoutRef,
    pub target: Target,
    /// The target's tag, then each `--tag`, without repeats; `latest` when there is none.
    pub tags: Vec<String>,
    pub insecure: bool,
}

/// `None` when the arguments are not in the simple forms handled here.
pub fn parse(args: &[OsString]) -> Option<PushArgs> {
    let mut positional = Vec::new();
    let mut extra_tags = Vec::new();
    let mut insecure = false;
    let mut it = args.iter().map(|a| a.to_str());
    while let Some(arg) = it.next() {
        let arg = arg?;
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (arg, None),
        };
        match name {
            "--insecure" if inline.is_none() => insecure = true,
            "--tag" | "--jobs" | "--retries" => {
                let value = match inline {
                    Some(v) => v,
                    None => it.next()??.to_string(),
                };
                if name == "--tag" {
                    extra_tags.push(value);
                } else if !is_int(&value) {
                    return None;
                }
            }
            _ if arg.starts_with('-') => return None,
            _ => positional.push(arg.to_string()),
        }
    }
    let [source, target] = positional.as_slice() else {
        return None;
    };
    let target = parse_target(target)?;
    let mut tags: Vec<String> = Vec::new();
    for tag in target.tag.iter().chain(&extra_tags) {
        if !valid_tag(tag) {
            return None;
        }
        if !tags.contains(tag) {
            tags.push(tag.clone());
        }
    }
    if tags.is_empty() {
        tags.push("latest".into());
    }
    Some(PushArgs {
        source: LayoutRef::parse(source)?,
        target,
        tags,
        insecure,
    })
}

fn is_int(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`
pub fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// `REGISTRY/REPO[:TAG]` with an explicit registry host (a name with `.` or `:`, or
/// `localhost`), as the Python reference parser splits it.
fn parse_target(value: &str) -> Option<Target> {
    if value.contains('@') {
        return None;
    }
    let (mut rest, mut tag) = (value, None);
    let last = value.rsplit('/').next().unwrap_or(value);
    if let Some(i) = last.rfind(':') {
        let cut = value.len() - last.len() + i;
        rest = &value[..cut];
        tag = Some(value[cut + 1..].to_string());
    }
    let (registry, repository) = rest.split_once('/')?;
    if !(registry.contains('.') || registry.contains(':') || registry == "localhost") {
        return None;
    }
    if !valid_repository(repository) {
        return None;
    }
    Some(Target {
        registry: registry.into(),
        repository: repository.into(),
        tag,
    })
}

/// `component ("/" component)*`, component = `[a-z0-9]+ ((. | _ | __ | -+) [a-z0-9]+)*`.
fn valid_repository(repo: &str) -> bool {
    components_valid(
        repo,
        |c| c.is_ascii_lowercase() || c.is_ascii_digit(),
        |sep| sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-'),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_split_like_the_python_parser() {
        let t = parse_target("127.0.0.1:5000/team/app:1.0").unwrap();
        assert_eq!(
            (t.registry.as_str(), t.repository.as_str(), t.tag.as_deref()),
            ("127.0.0.1:5000", "team/app", Some("1.0"))
        );
        let t = parse_target("localhost/app").unwrap();
        assert_eq!(
            (t.registry.as_str(), t.repository.as_str(), t.tag),
            ("localhost", "app", None)
        );
        assert!(
            parse_target("app:1").is_none(),
            "Docker Hub names go to Python"
        );
        assert!(parse_target("reg.io/Team/app").is_none(), "upper case");
        assert!(parse_target("reg.io/a--b/c__d/e-f.g").is_some());
        assert!(parse_target("reg.io/a..b").is_none());
        assert!(parse_target("reg.io/a/").is_none());
        assert!(parse_target("reg.io/app@sha256:00").is_none());
    }

    #[test]
    fn tags() {
        assert!(valid_tag("1.0_rc-1") && valid_tag("_x"));
        assert!(
            !valid_tag("-x") && !valid_tag(".x") && !valid_tag("") && !valid_tag(&"a".repeat(129))
        );
    }
}

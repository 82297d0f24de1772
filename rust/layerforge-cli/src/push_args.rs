//! The arguments of `layerforge push`, read the way the Python parser reads them, but only
//! in their plain forms: anything else (help, `--chunk-size`, `-v`, abbreviations, bad
//! values) is left to Python, which also reports the errors.

use std::ffi::OsString;
use std::time::Duration;

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
    /// The total time the native check may take (then Python pushes).
    pub check_time: Duration,
}

/// The bounds of the table of option rules (`push.jobs`, `push.retries`,
/// `registry.timeout` in python/layerforge/option_rules.py, held to it by
/// tests/vectors/option_rules.json): values outside them are usage errors that Python reports.
const JOBS: std::ops::RangeInclusive<i64> = 1..=64;
const RETRIES: std::ops::RangeInclusive<i64> = 1..=100;
const MAX_TIMEOUT: f64 = 86400.0;
/// The native check never takes longer than this, whatever the timeout allows.
const MAX_CHECK: Duration = Duration::from_secs(10);
pub const TIMEOUT_ENV: &str = "LAYERFORGE_REGISTRY_TIMEOUT";

/// `MAX_CHECK`, or less when `$LAYERFORGE_REGISTRY_TIMEOUT` (seconds) says so; `None` for a
/// value Python refuses.
fn check_time(value: Option<&str>) -> Option<Duration> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Some(MAX_CHECK);
    };
    if !is_decimal(value) {
        return None;
    }
    let seconds: f64 = value.parse().ok()?;
    if !(seconds > 0.0 && seconds <= MAX_TIMEOUT) {
        return None;
    }
    Some(Duration::from_secs_f64(seconds).min(MAX_CHECK))
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
                let range = if name == "--jobs" { JOBS } else { RETRIES };
                if name == "--tag" {
                    extra_tags.push(value);
                } else if !is_int(&value) || !value.parse().is_ok_and(|n: i64| range.contains(&n)) {
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
    let timeout = std::env::var_os(TIMEOUT_ENV);
    let timeout = match &timeout {
        Some(v) => Some(v.to_str()?),
        None => None,
    };
    Some(PushArgs {
        source: LayoutRef::parse(source)?,
        target,
        tags,
        insecure,
        check_time: check_time(timeout)?,
    })
}

/// `[0-9]+(\.[0-9]*)?|\.[0-9]+`: seconds as the option rules read them (no sign, exponent,
/// spaces or names such as `inf`).
fn is_decimal(s: &str) -> bool {
    let (whole, fraction) = s.split_once('.').unwrap_or((s, ""));
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    (!whole.is_empty() || !fraction.is_empty()) && digits(whole) && digits(fraction) && s != "."
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
    if !crate::origin::valid_registry(registry) {
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
pub fn valid_repository(repo: &str) -> bool {
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
    fn timeouts_as_python_reads_them() {
        assert_eq!(check_time(None), Some(MAX_CHECK));
        assert_eq!(check_time(Some("")), Some(MAX_CHECK));
        assert_eq!(check_time(Some("2")), Some(Duration::from_secs(2)));
        assert_eq!(check_time(Some("0.5")), Some(Duration::from_millis(500)));
        assert_eq!(check_time(Some("600")), Some(MAX_CHECK));
        for bad in ["0", "-1", "abc", "NaN", "inf", "86401", "1e400"] {
            assert_eq!(check_time(Some(bad)), None, "{bad}");
        }
    }

    #[test]
    fn jobs_and_retries_out_of_range_go_to_python() {
        let dir = tempfile::tempdir().expect("a scratch directory");
        std::fs::write(dir.path().join("oci-layout"), "{}").expect("a layout marker");
        let layout = dir.path().to_str().expect("utf-8").to_string();
        let args = |extra: &[&str]| {
            let mut v: Vec<OsString> = vec![layout.clone().into(), "127.0.0.1:5000/a/b:1".into()];
            v.extend(extra.iter().map(OsString::from));
            v
        };
        for good in [
            &["--jobs", "1"][..],
            &["--jobs=64"],
            &["--retries", "100"],
            &[],
        ] {
            assert!(parse(&args(good)).is_some(), "{good:?}");
        }
        for bad in [
            &["--jobs", "0"][..],
            &["--jobs", "65"],
            &["--jobs=100000"],
            &["--retries", "0"],
            &["--retries", "101"],
            &["--jobs", "99999999999999999999999"],
        ] {
            assert!(parse(&args(bad)).is_none(), "{bad:?}");
        }
    }

    const VECTORS: &str = include_str!("../../../tests/vectors/option_rules.json");

    /// The bounds and grammars read here are the table's: a value the rules refuse is never
    /// answered natively (Python reports it), and one they accept is.
    #[test]
    fn option_rules_vectors() {
        let doc: serde_json::Value = serde_json::from_str(VECTORS).expect("the vectors parse");
        let dir = tempfile::tempdir().expect("a scratch directory");
        std::fs::write(dir.path().join("oci-layout"), "{}").expect("a layout marker");
        let layout = dir.path().to_str().expect("utf-8").to_string();
        let mut seen = 0;
        for c in doc["cases"].as_array().expect("cases") {
            let ok = c["ok"] == true;
            let value = &c["value"];
            let text = value
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| value.to_string());
            let got = match c["rule"].as_str().expect("a rule") {
                "push.jobs" | "push.retries" if value.is_i64() => {
                    let flag = if c["rule"] == "push.jobs" {
                        "--jobs"
                    } else {
                        "--retries"
                    };
                    let argv: Vec<OsString> = vec![
                        layout.clone().into(),
                        "127.0.0.1:5000/a/b:1".into(),
                        flag.into(),
                        text.clone().into(),
                    ];
                    parse(&argv).is_some()
                }
                "registry.timeout" => check_time(Some(&text)).is_some(),
                "image.tag" => valid_tag(&text),
                "image.repository" => valid_repository(&text),
                _ => continue,
            };
            seen += 1;
            assert_eq!(got, ok, "{c}");
        }
        assert!(seen > 60, "{seen} cases");
    }

    #[test]
    fn tags() {
        assert!(valid_tag("1.0_rc-1") && valid_tag("_x"));
        assert!(
            !valid_tag("-x") && !valid_tag(".x") && !valid_tag("") && !valid_tag(&"a".repeat(129))
        );
    }
}

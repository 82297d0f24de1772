//! The grammar shared by repository names and layout references: `/`-separated components,
//! each runs of "alphanumeric" bytes joined by single separators; and sha256 digests.

/// `sha256:` and 64 lower-case hex digits.
pub fn is_sha256_digest(value: &str) -> bool {
    value.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64 && hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// True when every `/`-separated component of `value` is `alnum+ (separator alnum+)*`.
pub fn components_valid(value: &str, alnum: fn(u8) -> bool, separator: fn(&str) -> bool) -> bool {
    value.split('/').all(|component| {
        let b = component.as_bytes();
        let (mut i, mut previous_alnum) = (0, false);
        while i < b.len() {
            if alnum(b[i]) {
                i += 1;
                previous_alnum = true;
                continue;
            }
            let run = b[i..].iter().take_while(|&&c| !alnum(c)).count();
            if !previous_alnum || !separator(&component[i..i + run]) {
                return false;
            }
            i += run;
            previous_alnum = false;
        }
        previous_alnum
    })
}

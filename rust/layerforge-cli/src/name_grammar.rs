//! The grammar shared by repository names and layout references: `/`-separated components,
//! each runs of "alphanumeric" bytes joined by single separators.

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

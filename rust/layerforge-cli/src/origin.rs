//! Registry names (`host[:port]`) and the loopback rule, as `layerforge.trust.origins` states
//! them: loopback is `localhost` itself, an IPv4 literal in 127.0.0.0/8 or `[::1]`; a host
//! name that merely looks like one (`127.0.0.1.nip.io`) is not. Both implementations pass
//! the cases of `tests/vectors/registry_hosts.json`.

use std::net::Ipv6Addr;

/// `host[:port]` or `[v6][:port]` split into (host, port); `None` when it is neither.
fn split_host_port(registry: &str) -> Option<(&str, Option<&str>)> {
    if registry.starts_with('[') {
        let end = registry.find(']')?;
        let (host, rest) = registry.split_at(end + 1);
        if rest.is_empty() {
            return Some((host, None));
        }
        return rest.strip_prefix(':').map(|port| (host, Some(port)));
    }
    match registry.split_once(':') {
        Some((_, port)) if port.contains(':') => None,
        Some((host, port)) => Some((host, Some(port))),
        None => Some((registry, None)),
    }
}

/// A strict dotted quad: four decimal octets, no leading zeros, each at most 255.
fn ipv4_literal(host: &str) -> Option<[u8; 4]> {
    let mut octets = [0u8; 4];
    let mut parts = host.split('.');
    for octet in &mut octets {
        let part = parts.next()?;
        let digits =
            part.len() <= 3 && !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        if !digits || (part.len() > 1 && part.starts_with('0')) {
            return None;
        }
        *octet = part.parse().ok()?;
    }
    parts.next().is_none().then_some(octets)
}

/// `[...]` holding an IPv6 address without a zone index.
fn ipv6_literal(host: &str) -> Option<Ipv6Addr> {
    let inner = host.strip_prefix('[')?.strip_suffix(']')?;
    if inner.contains('%') {
        return None;
    }
    inner.parse().ok()
}

fn valid_label(label: &str) -> bool {
    let b = label.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

fn valid_host(host: &str) -> bool {
    if host.starts_with('[') {
        return ipv6_literal(host).is_some();
    }
    !host.is_empty() && host.len() <= 253 && host.split('.').all(valid_label)
}

/// A DNS name, an IPv4 literal or a bracketed IPv6 literal, with an optional port 1-65535.
pub fn valid_registry(registry: &str) -> bool {
    let Some((host, port)) = split_host_port(registry) else {
        return false;
    };
    if let Some(port) = port {
        let digits =
            !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
        if !digits || !matches!(port.parse::<u32>(), Ok(1..=65535)) {
            return false;
        }
    }
    valid_host(host)
}

/// Loopback registries are plain HTTP without `--insecure`.
pub fn is_loopback(registry: &str) -> bool {
    if !valid_registry(registry) {
        return false;
    }
    let Some((host, _)) = split_host_port(registry) else {
        return false;
    };
    if host == "localhost" {
        return true;
    }
    if let Some(octets) = ipv4_literal(host) {
        return octets[0] == 127;
    }
    ipv6_literal(host) == Some(Ipv6Addr::LOCALHOST)
}

#[cfg(test)]
mod tests {
    use super::{is_loopback, valid_registry};
    use serde_json::Value;

    const VECTORS: &str = include_str!("../../../tests/vectors/registry_hosts.json");

    #[test]
    fn shared_vectors() {
        let doc: Value = serde_json::from_str(VECTORS).expect("the vectors file is JSON");
        let cases = doc["cases"].as_array().expect("a list of cases");
        assert!(cases.len() > 50, "the whole file is read");
        let mut wrong = Vec::new();
        for case in cases {
            let name = case["registry"].as_str().expect("registry is a string");
            let valid = case["valid"].as_bool().expect("valid is a bool");
            let loopback = case["loopback"].as_bool().expect("loopback is a bool");
            if (valid_registry(name), is_loopback(name)) != (valid, loopback) {
                wrong.push(format!("{name:?}"));
            }
        }
        assert!(wrong.is_empty(), "disagree with the vectors: {wrong:?}");
    }
}

//! Which hosts a confined process may reach, and what it tried to reach
//! that it may not.
//!
//! A confined process has a network namespace of its own, with only its own
//! loopback; its way out is omk's proxy ([`super::proxy`]), which lets a
//! connection through only to a host the [`AllowList`] names and records
//! every one it refuses ([`Refusals`]). What happened is kept as a
//! [`NetworkRecord`] with the attempt or gate result.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// One allowed destination: `host`, `host:port`, `*.domain` or `*.domain:port`
/// (no port: any port). Hosts compare without case; `[::1]:80` for IPv6.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct HostPattern {
    /// The host, lower case; a leading `*.` matches any subdomain.
    pub host: String,
    /// The port, when only one is allowed.
    pub port: Option<u16>,
}

impl HostPattern {
    /// Reads `host`, `host:port`, `*.domain[:port]`, `[v6]` or `[v6]:port`.
    pub fn parse(text: &str) -> Result<HostPattern, String> {
        let text = text.trim();
        let bad = |why: &str| Err(format!("`{text}` is not a host to allow: {why}"));
        if text.is_empty() {
            return bad("it is empty");
        }
        if text.contains("://") || text.contains('/') {
            return bad("give a host name and an optional port, without a scheme or path");
        }
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let Some((host, after)) = rest.split_once(']') else {
                return bad("an IPv6 address needs its closing `]`");
            };
            match after.strip_prefix(':') {
                Some(p) => (host.to_string(), Some(p)),
                None if after.is_empty() => (host.to_string(), None),
                None => return bad("unexpected text after `]`"),
            }
        } else {
            match text.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') => (h.to_string(), Some(p)),
                Some(_) => return bad("write an IPv6 address as `[addr]:port`"),
                None => (text.to_string(), None),
            }
        };
        let port = match port {
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => Some(n),
                _ => return bad("the port must be a number from 1 to 65535"),
            },
            None => None,
        };
        let host = host.to_ascii_lowercase();
        let name = host.strip_prefix("*.").unwrap_or(&host);
        if name.is_empty()
            || name.contains('*')
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'))
        {
            return bad(
                "a host is letters, digits, `.`, `-` and `_`, optionally starting with `*.`",
            );
        }
        Ok(HostPattern { host, port })
    }

    /// Whether a connection to `host:port` matches.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let host = host.to_ascii_lowercase();
        match self.host.strip_prefix("*.") {
            Some(domain) => host
                .strip_suffix(domain)
                .is_some_and(|sub| sub.ends_with('.') && sub.len() > 1),
            None => host == self.host || (is_loopback(&self.host) && is_loopback(&host)),
        }
    }

    /// The loopback port this pattern allows, when it names the host's
    /// loopback with a port: such a port is forwarded into the sandbox at
    /// the same address.
    pub fn loopback_port(&self) -> Option<u16> {
        is_loopback(&self.host).then_some(self.port).flatten()
    }
}

impl std::fmt::Display for HostPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.host.contains(':'), self.port) {
            (true, Some(p)) => write!(f, "[{}]:{p}", self.host),
            (true, None) => write!(f, "[{}]", self.host),
            (false, Some(p)) => write!(f, "{}:{p}", self.host),
            (false, None) => f.write_str(&self.host),
        }
    }
}

/// Whether `host` names this machine's loopback.
pub fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The destinations a confined process may reach.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllowList(pub Vec<HostPattern>);

impl AllowList {
    /// Reads every entry, saying what is wrong with each bad one.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<AllowList, Vec<String>> {
        let (good, bad): (Vec<_>, Vec<_>) = entries
            .iter()
            .map(|e| HostPattern::parse(e.as_ref()))
            .partition(Result::is_ok);
        if !bad.is_empty() {
            return Err(bad.into_iter().filter_map(Result::err).collect());
        }
        let mut list: Vec<HostPattern> = good.into_iter().filter_map(Result::ok).collect();
        list.sort();
        list.dedup();
        Ok(AllowList(list))
    }

    /// This list and `other`'s entries.
    pub fn with(&self, other: &AllowList) -> AllowList {
        let mut list: Vec<HostPattern> = self.0.iter().chain(&other.0).cloned().collect();
        list.sort();
        list.dedup();
        AllowList(list)
    }

    /// Whether a connection to `host:port` is allowed.
    pub fn allows(&self, host: &str, port: u16) -> bool {
        self.0.iter().any(|p| p.matches(host, port))
    }

    /// The host loopback ports forwarded into the sandbox.
    pub fn loopback_ports(&self) -> Vec<u16> {
        let mut ports: Vec<u16> = self
            .0
            .iter()
            .filter_map(HostPattern::loopback_port)
            .collect();
        ports.sort_unstable();
        ports.dedup();
        ports
    }

    /// Whether nothing is allowed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The entries as written in `omk.toml`.
    pub fn names(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }
}

/// The network a confined process had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkPolicy {
    /// Its own namespace; out only through omk's proxy to allowed hosts.
    Proxied,
    /// omk's own network (`[sandbox] network = "open"`, or a kernel without
    /// network namespaces).
    Open,
}

/// A destination the proxy refused, and how often.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refused {
    /// The host as it was asked for (a name when it was asked by name).
    pub host: String,
    /// The port.
    pub port: u16,
    /// How many connections to it were refused.
    pub count: u32,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.host.contains(':') {
            true => write!(f, "[{}]:{}", self.host, self.port)?,
            false => write!(f, "{}:{}", self.host, self.port)?,
        }
        if self.count > 1 {
            write!(f, " ({}×)", self.count)?;
        }
        Ok(())
    }
}

/// What one agent attempt or gate could reach, and what it was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRecord {
    /// The network it had.
    pub policy: NetworkPolicy,
    /// The hosts it was allowed (with [`NetworkPolicy::Proxied`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed: Vec<String>,
    /// The connections the proxy refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<Refused>,
}

impl NetworkRecord {
    /// A record of omk's own network.
    pub fn open() -> NetworkRecord {
        NetworkRecord {
            policy: NetworkPolicy::Open,
            allowed: vec![],
            refused: vec![],
        }
    }

    /// The refused destinations, in a line.
    pub fn refused_list(&self) -> String {
        self.refused
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// What a failure's reason adds when connections were refused: which,
    /// and the setting that would allow them.
    pub fn failure_hint(&self) -> Option<String> {
        if self.refused.is_empty() {
            return None;
        }
        let hosts: Vec<String> = self
            .refused
            .iter()
            .map(|r| match r.host.contains(':') {
                true => format!("\"[{}]:{}\"", r.host, r.port),
                false => format!("\"{}:{}\"", r.host, r.port),
            })
            .collect();
        Some(format!(
            "the sandbox refused connections to {}; to allow them, add `allow_hosts = [{}]` \
             under [sandbox] (or the gate) in omk.toml",
            self.refused_list(),
            hosts.join(", ")
        ))
    }
}

/// The connections refused so far, counted by destination.
#[derive(Debug, Default)]
pub struct Refusals(Mutex<BTreeMap<(String, u16), u32>>);

impl Refusals {
    /// Counts one refused connection to `host:port`.
    pub fn add(&self, host: &str, port: u16) {
        if let Ok(mut map) = self.0.lock() {
            *map.entry((host.to_ascii_lowercase(), port)).or_default() += 1;
        }
    }

    /// Every refused destination, in order.
    pub fn list(&self) -> Vec<Refused> {
        self.0
            .lock()
            .map(|map| {
                map.iter()
                    .map(|((host, port), count)| Refused {
                        host: host.clone(),
                        port: *port,
                        count: *count,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> HostPattern {
        HostPattern::parse(s).unwrap()
    }

    #[test]
    fn patterns_match_hosts_ports_and_subdomains() {
        assert!(p("pypi.org").matches("PyPI.org", 443));
        assert!(p("pypi.org").matches("pypi.org", 80));
        assert!(!p("pypi.org").matches("files.pypi.org", 443));
        assert!(p("*.crates.io").matches("static.crates.io", 443));
        assert!(!p("*.crates.io").matches("crates.io", 443));
        assert!(!p("*.crates.io").matches("evilcrates.io", 443));
        assert!(p("127.0.0.1:8080").matches("127.0.0.1", 8080));
        assert!(p("127.0.0.1:8080").matches("localhost", 8080));
        assert!(!p("127.0.0.1:8080").matches("127.0.0.1", 8081));
        assert!(p("[::1]:9000").matches("[::1]", 9000));
        assert_eq!(p("localhost:5000").loopback_port(), Some(5000));
        assert_eq!(p("example.com:5000").loopback_port(), None);
        assert_eq!(p("[::1]:9000").to_string(), "[::1]:9000");
    }

    #[test]
    fn bad_entries_are_all_named() {
        let errors = AllowList::parse(&["https://pypi.org", "a:99999", "ok.org", "*"]).unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].contains("without a scheme"), "{errors:?}");
        assert!(errors[1].contains("port"), "{errors:?}");
    }

    #[test]
    fn a_failure_hint_names_the_hosts_and_the_setting() {
        let record = NetworkRecord {
            policy: NetworkPolicy::Proxied,
            allowed: vec![],
            refused: vec![Refused {
                host: "pypi.org".into(),
                port: 443,
                count: 3,
            }],
        };
        let hint = record.failure_hint().unwrap();
        assert!(hint.contains("pypi.org:443 (3×)"), "{hint}");
        assert!(hint.contains("allow_hosts = [\"pypi.org:443\"]"), "{hint}");
    }
}

//! Addresses and allow lists: `REMOTE_ADDR` parsed, and the IPs and networks a system
//! admits. A leaf: the config holds allow lists, the gate asks them.
//!
//! The address is `REMOTE_ADDR` as the web server saw the TCP peer, never a header such as
//! `X-Forwarded-For`, which any client can set. Behind a proxy, the web server's own real-IP
//! module (nginx `realip`, Apache `mod_remoteip`) is the place to trust one.

use std::net::IpAddr;

use ipnetwork::IpNetwork;

/// IPs and networks, each optionally excluded with a leading `!`. An address is allowed when
/// some plain entry contains it and no `!` entry does, whatever the order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    allow: Vec<IpNetwork>,
    deny: Vec<IpNetwork>,
}

impl AllowList {
    pub fn parse(entries: &[String]) -> Result<AllowList, String> {
        let mut list = AllowList::default();
        for entry in entries {
            let (exclude, text) = match entry.trim().strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, entry.trim()),
            };
            let net: IpNetwork = text
                .parse()
                .map_err(|_| format!("'{entry}' is not an IP address or network (10.0.0.7, 10.0.0.0/8, ::1, !10.0.0.13)"))?;
            let net = normalize_network(net);
            if exclude {
                list.deny.push(net);
            } else {
                list.allow.push(net);
            }
        }
        Ok(list)
    }

    pub fn allows(&self, addr: IpAddr) -> bool {
        let addr = normalize(addr);
        self.allow.iter().any(|n| n.contains(addr)) && !self.deny.iter().any(|n| n.contains(addr))
    }

    pub fn is_empty(&self) -> bool {
        self.allow.is_empty()
    }

    /// Whether some address is in both lists' plain entries (exclusions are not weighed:
    /// enough to say "look at these two").
    pub fn overlaps(&self, other: &AllowList) -> bool {
        self.allow.iter().any(|a| {
            other
                .allow
                .iter()
                .any(|b| a.contains(b.network()) || b.contains(a.network()))
        })
    }
}

/// `::ffff:10.0.0.7` is how a dual-stack socket shows an IPv4 peer; it must meet the IPv4
/// rules, or an IPv4 `!` exclusion could be walked around.
pub fn normalize(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => addr,
        },
        v4 => v4,
    }
}

fn normalize_network(net: IpNetwork) -> IpNetwork {
    match net {
        IpNetwork::V6(v6) if v6.prefix() >= 96 => match v6.ip().to_ipv4_mapped() {
            Some(v4) => IpNetwork::new(IpAddr::V4(v4), v6.prefix() - 96).unwrap_or(net),
            None => net,
        },
        other => other,
    }
}

/// Parses `REMOTE_ADDR`. Missing or unparsable is `None`, which no allow list admits.
pub fn parse_remote_addr(text: Option<&str>) -> Option<IpAddr> {
    text.and_then(|t| t.trim().parse::<IpAddr>().ok())
        .map(normalize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> AllowList {
        AllowList::parse(&entries.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn allow_lists_match_ips_networks_and_exclusions() {
        let l = list(&[
            "127.0.0.1",
            "::1",
            "10.0.0.0/8",
            "!10.0.0.13",
            "2001:db8::/32",
        ]);
        let table: &[(&str, bool)] = &[
            ("127.0.0.1", true),
            ("127.0.0.2", false),
            ("::1", true),
            ("10.200.1.1", true),
            ("10.0.0.13", false),
            ("::ffff:10.0.0.13", false), // mapped IPv6 meets the IPv4 exclusion
            ("::ffff:10.0.0.14", true),
            ("::ffff:127.0.0.1", true),
            ("11.0.0.1", false),
            ("2001:db8::5", true),
            ("2001:db9::5", false),
        ];
        for (ip, ok) in table {
            assert_eq!(l.allows(ip.parse().unwrap()), *ok, "{ip}");
        }
    }

    #[test]
    fn exclusion_order_does_not_matter() {
        let l = list(&["!10.0.0.13", "10.0.0.0/8"]);
        assert!(!l.allows("10.0.0.13".parse().unwrap()));
        assert!(l.allows("10.0.0.12".parse().unwrap()));
    }

    #[test]
    fn mapped_networks_are_ipv4_networks() {
        let l = list(&["::ffff:192.0.2.0/120"]);
        assert!(l.allows("192.0.2.77".parse().unwrap()));
    }

    #[test]
    fn bad_entries_are_named() {
        let e = AllowList::parse(&["10.0.0.300/8".to_string()]).unwrap_err();
        assert!(e.contains("'10.0.0.300/8'"), "{e}");
        assert!(AllowList::parse(&["10.0.0.0/33".to_string()]).is_err());
        assert!(AllowList::parse(&["example.com".to_string()]).is_err());
        assert!(AllowList::default().is_empty());
    }

    #[test]
    fn remote_addr_must_be_an_address() {
        assert_eq!(
            parse_remote_addr(Some("10.0.0.7")),
            Some("10.0.0.7".parse().unwrap())
        );
        assert_eq!(
            parse_remote_addr(Some("::ffff:10.0.0.7")),
            Some("10.0.0.7".parse().unwrap())
        );
        assert_eq!(parse_remote_addr(Some("")), None);
        assert_eq!(parse_remote_addr(Some("10.0.0.7, 1.2.3.4")), None);
        assert_eq!(parse_remote_addr(None), None);
    }
}

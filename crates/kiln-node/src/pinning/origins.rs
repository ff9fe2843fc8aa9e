//! A request's origins: the ones kiln can fetch from are HTTP trustless gateways, named by a
//! URL (`https://gw.example.org`) or a multiaddr ending in `/http` or `/https` (optionally
//! followed by `/p2p/PEER`), e.g. `/dns4/gw.example.org/tcp/443/https`. Any other origin
//! is kept as a hint.

/// What an origin is to kiln.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A trustless gateway at this base URL (no trailing `/`).
    Gateway(String),
    /// Something kiln cannot fetch from (a libp2p address): kept, not used.
    Hint,
}

/// Read one origin.
pub fn parse_origin(s: &str) -> Origin {
    let s = s.trim();
    if let Some(rest) = s
        .strip_prefix("http://")
        .or_else(|| s.strip_prefix("https://"))
    {
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        if host.is_empty() || host.contains('@') {
            return Origin::Hint;
        }
        let scheme = &s[..s.len() - rest.len()];
        let path = rest[host.len()..]
            .split(['?', '#'])
            .next()
            .unwrap_or("")
            .trim_end_matches('/');
        return Origin::Gateway(format!("{scheme}{host}{path}"));
    }
    multiaddr(s).map_or(Origin::Hint, Origin::Gateway)
}

fn multiaddr(s: &str) -> Option<String> {
    let mut parts = s.strip_prefix('/')?.split('/');
    let (proto, host) = (parts.next()?, parts.next()?);
    let host = match proto {
        "ip4" => host.parse::<std::net::Ipv4Addr>().ok()?.to_string(),
        "ip6" => format!("[{}]", host.parse::<std::net::Ipv6Addr>().ok()?),
        "dns" | "dns4" | "dns6" => {
            let ok = !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            if !ok {
                return None;
            }
            host.to_string()
        }
        _ => return None,
    };
    if parts.next()? != "tcp" {
        return None;
    }
    let port: u16 = parts.next()?.parse().ok()?;
    let scheme = match parts.next()? {
        "http" => "http",
        "https" => "https",
        "tls" => match parts.next()? {
            "http" => "https",
            _ => return None,
        },
        _ => return None,
    };
    // Nothing but a peer ID may follow.
    match (parts.next(), parts.next(), parts.next()) {
        (None, _, _) => {}
        (Some("p2p"), Some(_), None) => {}
        _ => return None,
    }
    Some(format!("{scheme}://{host}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateways_and_hints() {
        let gw = |s: &str| Origin::Gateway(s.to_string());
        assert_eq!(
            parse_origin("https://gw.example.org/"),
            gw("https://gw.example.org")
        );
        assert_eq!(
            parse_origin("http://127.0.0.1:8080"),
            gw("http://127.0.0.1:8080")
        );
        assert_eq!(parse_origin("http://h/sub/?x"), gw("http://h/sub"));
        assert_eq!(parse_origin("https://user@h"), Origin::Hint);
        assert_eq!(
            parse_origin("/dns4/gw.example.org/tcp/443/https"),
            gw("https://gw.example.org:443")
        );
        assert_eq!(
            parse_origin("/ip4/127.0.0.1/tcp/8080/http/p2p/12D3KooWabc"),
            gw("http://127.0.0.1:8080")
        );
        assert_eq!(parse_origin("/ip6/::1/tcp/80/http"), gw("http://[::1]:80"));
        assert_eq!(
            parse_origin("/ip4/1.2.3.4/tcp/443/tls/http"),
            gw("https://1.2.3.4:443")
        );
        assert_eq!(
            parse_origin("/ip4/1.2.3.4/tcp/4001/p2p/12D3KooWabc"),
            Origin::Hint
        );
        assert_eq!(parse_origin("/ip4/1.2.3.4/udp/4001/quic-v1"), Origin::Hint);
        assert_eq!(parse_origin("/dns4/a b/tcp/80/http"), Origin::Hint);
        assert_eq!(parse_origin("/ip4/999.1.1.1/tcp/80/http"), Origin::Hint);
        assert_eq!(parse_origin("/ip4/1.2.3.4/tcp/80/http/extra"), Origin::Hint);
        assert_eq!(parse_origin("garbage"), Origin::Hint);
    }
}

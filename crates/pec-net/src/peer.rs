//! Which clients count as one for the per-IP limits (connections, password penalty).

use std::net::{IpAddr, Ipv6Addr};

/// The key under which a client's address is counted: an IPv4 address as itself (also when
/// it arrives IPv4-mapped on a dual-stack socket), an IPv6 address by its /64 prefix, since
/// one IPv6 host usually owns a whole /64 and could otherwise pick a fresh address for
/// every connection.
pub fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & (u128::MAX << 64);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_is_itself_mapped_or_not_and_ipv6_counts_by_its_64_prefix() {
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(key(v4), v4);
        assert_eq!(key("::ffff:192.0.2.7".parse().unwrap()), v4);
        let a = key("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = key("2001:db8:1:2:bbbb::2".parse().unwrap());
        let other = key("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_eq!(a, "2001:db8:1:2::".parse::<IpAddr>().unwrap());
        assert_ne!(a, other);
    }
}

//! Which local addresses a peer binds (see [`IceConfig::interfaces`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};

use crate::media::rtc::config::IceConfig;
use crate::media::rtc::peer::MediaError;

/// The local addresses to bind; see [`IceConfig::interfaces`].
pub(crate) fn bind_addresses(ice: &IceConfig) -> Result<Vec<SocketAddr>, MediaError> {
    let mut ips: Vec<IpAddr> = vec![];
    for ip in &ice.interfaces {
        if ip.is_unspecified() {
            return Err(MediaError::InvalidConfig(format!(
                "{ip} is a wildcard: webrtc would bind every interface; list the addresses"
            )));
        }
        if ip.is_multicast() {
            return Err(MediaError::InvalidConfig(format!("{ip} is a multicast address")));
        }
        if ip.is_loopback() && !ice.allow_loopback {
            return Err(MediaError::InvalidConfig(format!(
                "{ip} is loopback: allow it with PhoneConfigBuilder::allow_loopback(true) (IceConfig::allow_loopback)"
            )));
        }
        if !ips.contains(ip) {
            ips.push(*ip);
        }
    }
    if ice.interfaces.is_empty() {
        // Documentation addresses: routed like any public address, and
        // connect() on UDP sends nothing.
        let probes = [
            SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 9),
            SocketAddr::new(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)), 9),
        ];
        for probe in probes {
            if let Some(ip) = default_route_source(probe)
                && !ips.contains(&ip)
            {
                ips.push(ip);
            }
        }
    }
    if ice.allow_loopback {
        let v4 = IpAddr::V4(Ipv4Addr::LOCALHOST);
        if !ips.contains(&v4) {
            ips.push(v4);
        }
        let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        if ice.interfaces.is_empty() && UdpSocket::bind((v6, 0)).is_ok() && !ips.contains(&v6) {
            ips.push(v6);
        }
    }
    if ips.is_empty() {
        return Err(MediaError::NoLocalAddress);
    }
    Ok(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect())
}

/// The source address the kernel would use towards `probe`, if there is a route.
pub(crate) fn default_route_source(probe: SocketAddr) -> Option<IpAddr> {
    let any: SocketAddr =
        if probe.is_ipv4() { (Ipv4Addr::UNSPECIFIED, 0).into() } else { (Ipv6Addr::UNSPECIFIED, 0).into() };
    let socket = UdpSocket::bind(any).ok()?;
    socket.connect(probe).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    let link_local = match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 == 0xfe80,
    };
    (!ip.is_unspecified() && !ip.is_loopback() && !link_local).then_some(ip)
}

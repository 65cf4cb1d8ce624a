//! The client's address, as API.md defines it: the TCP peer, or, when the peer is one of
//! `http.trusted_proxies`, the first untrusted address in `X-Forwarded-For` walking from the
//! right. Login throttling counts by it; the audit log records it.
//!
//! Walking from the right matters: every proxy appends the address it received the request from,
//! so the right end is written by our own proxies and the left end by whoever sent the request,
//! who can put anything there. Only the entries our proxies vouch for are believed.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use baton_core::ErrorCode;
use ipnet::IpNet;

use crate::AppState;
use crate::error::Error;

/// The client's address of a request (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<ClientAddr, Error> {
        // The server loop (`serve.rs`) puts the peer on every request; only a router used without
        // it lacks one, and guessing an address there would let throttling count the wrong one.
        let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() else {
            return Err(Error::new(ErrorCode::Internal, "the request has no peer address"));
        };
        Ok(ClientAddr(client_addr(peer.ip(), &parts.headers, &state.opts.trusted_proxies)))
    }
}

/// The client's address of a request from `peer` with `headers`, trusting `trusted` proxies.
pub fn client_addr(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(&ip));
    let mut client = peer.to_canonical();
    if !is_trusted(client) {
        return client;
    }
    // Several headers count as one list, in order (RFC 9110 §5.3).
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for hop in hops.into_iter().rev() {
        // An entry that is not an address cannot be the client; the trusted hop that reported
        // it is the last thing known for sure, so it stays the answer.
        let Some(ip) = parse_hop(hop) else { return client };
        client = ip;
        if !is_trusted(ip) {
            return ip;
        }
    }
    // Every hop is a trusted proxy: the leftmost one is as far as anyone can tell.
    client
}

/// One `X-Forwarded-For` entry: an address, optionally with a port (`1.2.3.4:5`, `[::1]:5`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let ip = hop.parse::<IpAddr>().ok().or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))?;
    Some(ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client_whatever_the_header_says() {
        let h = xff(&["1.1.1.1"]);
        assert_eq!(client_addr(ip("10.0.0.5"), &h, &[]), ip("10.0.0.5"));
        assert_eq!(client_addr(ip("10.0.0.5"), &h, &nets(&["192.168.0.0/16"])), ip("10.0.0.5"));
    }

    #[test]
    fn a_trusted_peer_hands_over_to_the_first_untrusted_hop_from_the_right() {
        let trusted = nets(&["10.0.0.0/8"]);
        // The client forged 6.6.6.6; our proxies appended the real client and each other.
        let h = xff(&["6.6.6.6, 203.0.113.9, 10.0.0.7"]);
        assert_eq!(client_addr(ip("10.0.0.1"), &h, &trusted), ip("203.0.113.9"));
        // The same list split over several headers.
        let h = xff(&["6.6.6.6", "203.0.113.9", "10.0.0.7"]);
        assert_eq!(client_addr(ip("10.0.0.1"), &h, &trusted), ip("203.0.113.9"));
    }

    #[test]
    fn a_trusted_peer_without_a_header_is_the_client() {
        assert_eq!(client_addr(ip("10.0.0.1"), &HeaderMap::new(), &nets(&["10.0.0.0/8"])), ip("10.0.0.1"));
    }

    #[test]
    fn garbage_stops_the_walk_at_the_last_hop_known_for_sure() {
        let trusted = nets(&["10.0.0.0/8"]);
        let h = xff(&["203.0.113.9, unknown, 10.0.0.7"]);
        assert_eq!(client_addr(ip("10.0.0.1"), &h, &trusted), ip("10.0.0.7"));
        let h = xff(&["not an address"]);
        assert_eq!(client_addr(ip("10.0.0.1"), &h, &trusted), ip("10.0.0.1"));
    }

    #[test]
    fn all_hops_trusted_gives_the_leftmost() {
        let h = xff(&["10.0.0.9, 10.0.0.8"]);
        assert_eq!(client_addr(ip("10.0.0.1"), &h, &nets(&["10.0.0.0/8"])), ip("10.0.0.9"));
    }

    #[test]
    fn ports_brackets_and_mapped_addresses_are_understood() {
        let trusted = nets(&["10.0.0.0/8", "fd00::/8"]);
        let h = xff(&["[2001:db8::1]:4711, 10.0.0.7:80"]);
        assert_eq!(client_addr(ip("fd00::1"), &h, &trusted), ip("2001:db8::1"));
        // A dual-stack listener sees IPv4 peers as mapped IPv6 addresses.
        let h = xff(&["198.51.100.4"]);
        assert_eq!(client_addr(ip("::ffff:10.0.0.1"), &h, &trusted), ip("198.51.100.4"));
        assert_eq!(client_addr(ip("::ffff:192.0.2.1"), &h, &trusted), ip("192.0.2.1"));
    }
}

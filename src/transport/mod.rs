//! Getting SIP messages to and from servers over WebSocket: the connection
//! itself ([`ws`], [`tls`]), which server to use and when to retry
//! ([`reconnect`]), and how a dead connection is noticed ([`keepalive`]).
//!
//! [`reconnect`] and [`keepalive`] are sans-IO policies; only [`ws`] does I/O.

pub(crate) mod keepalive;
pub(crate) mod reconnect;
pub(crate) mod tls;
pub(crate) mod ws;

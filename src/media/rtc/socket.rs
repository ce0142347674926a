//! The runtime webrtc's peers run on: tokio's, except for their UDP sockets,
//! which carry one datagram per send and per receive.
//!
//! webrtc 0.21's own tokio sockets switch on UDP GRO and GSO (through
//! `quinn-udp`), and its driver sizes every receive buffer from that: with
//! GRO up to 64 coalesced datagrams, so two buffers of 96 KB per peer
//! connection (one per socket, one for draining bursts), about 190 KiB of a
//! phone call's 50 packets a second that never coalesce. [`PeerRuntime`]
//! hands the driver plain tokio sockets that report no GRO and no GSO, so
//! its buffers are 2 kB each, and every packet is one `sendto` / `recvfrom`.
//! Everything else (tasks, timers, TCP, name lookup) is webrtc's
//! [`TokioRuntime`].
//!
//! # Datagrams that arrive before ICE has chosen a path
//!
//! webrtc drops every non-STUN datagram (DTLS, RTP) that arrives before its
//! ICE agent has selected a candidate pair. A browser that answers our offer
//! becomes writable on our first connectivity check and sends its DTLS
//! ClientHello at once, while our agent, the controlling one, nominates a
//! pair only at its next check tick: the ClientHello was lost, and the
//! handshake waited for the browser's retransmission (about 50 ms later in
//! Chromium). The sockets therefore hold such datagrams (up to
//! [`EARLY_HOLD`]) until the peer reports ICE connected through
//! [`IceGate::open`], then hand them to the driver as if they had just
//! arrived. Until our offer's answer is applied they also answer the
//! remote's early connectivity checks (see `early_checks`), so the browser
//! sends that ClientHello early rather than after its next check.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::media::rtc::early_checks::LocalIce;
use tokio::io::ReadBuf;
use webrtc::runtime::{
    AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, JoinHandle, RecvMeta, Runtime, TokioRuntime,
    Transmit,
};

/// Most datagrams a socket holds for a peer whose ICE is not connected yet;
/// more are dropped, as webrtc would drop them all. A DTLS flight is a few.
pub(crate) const EARLY_HOLD: usize = 16;

/// Whether a peer's ICE has selected a pair, shared by the peer's event
/// handler (which opens it) and its sockets (which hold datagrams until
/// then).
#[derive(Debug, Default)]
pub(crate) struct IceGate {
    /// ICE connected: read on every datagram, so not behind the lock.
    open: AtomicBool,
    state: Mutex<GateState>,
    /// Early checks answered.
    answered: AtomicU64,
    /// Datagrams held until ICE connected.
    held: AtomicU64,
}

#[derive(Debug, Default)]
struct GateState {
    /// Our credentials while early checks are answered (offer made, answer
    /// not applied yet).
    answering: Option<LocalIce>,
    /// The receive tasks of sockets holding datagrams, woken on opening.
    wakers: Vec<Waker>,
}

impl IceGate {
    fn lock(&self) -> MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    /// From our first offer until its answer is applied: answer the remote's
    /// checks with `local`.
    pub(crate) fn answer_early_checks(&self, local: LocalIce) {
        self.lock().answering = Some(local);
    }

    /// The answer is being applied: webrtc's agent answers checks from now.
    pub(crate) fn stop_answering_early_checks(&self) {
        self.lock().answering = None;
    }

    /// Our answer to `datagram` from `from`, if it is an early check for us.
    fn early_answer(&self, datagram: &[u8], from: SocketAddr) -> Option<Vec<u8>> {
        self.lock().answering.as_ref()?.answer(datagram, from)
    }

    /// (early checks answered, datagrams held) so far.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (self.answered.load(Ordering::Relaxed), self.held.load(Ordering::Relaxed))
    }

    /// ICE has selected a pair: held datagrams may go to the driver now.
    pub(crate) fn open(&self) {
        let wakers = {
            let mut state = self.lock();
            self.open.store(true, Ordering::Release);
            std::mem::take(&mut state.wakers)
        };
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Wakes `waker` when the gate opens, or now if it opened since the
    /// caller looked (the last few distinct wakers are kept: webrtc also
    /// polls with a no-op waker when it drains a burst).
    fn wake_on_open(&self, waker: &Waker) {
        let mut state = self.lock();
        if self.is_open() {
            waker.wake_by_ref();
            return;
        }
        if state.wakers.iter().any(|w| w.will_wake(waker)) {
            return;
        }
        if state.wakers.len() == 4 {
            state.wakers.remove(0);
        }
        state.wakers.push(waker.clone());
    }
}

/// webrtc's [`TokioRuntime`] with one-datagram UDP sockets that hold what
/// arrives before ICE is connected (see the module doc).
#[derive(Debug, Default)]
pub(crate) struct PeerRuntime {
    gate: Arc<IceGate>,
}

impl PeerRuntime {
    /// A runtime whose sockets wait for `gate`.
    pub(crate) fn new(gate: Arc<IceGate>) -> PeerRuntime {
        PeerRuntime { gate }
    }
}

impl Runtime for PeerRuntime {
    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) -> Box<dyn JoinHandle> {
        TokioRuntime.spawn(future)
    }

    fn spawn_reactor(
        &self,
        reactor_pool_size: usize,
        future: Pin<Box<dyn Future<Output = ()> + Send>>,
    ) -> Box<dyn JoinHandle> {
        TokioRuntime.spawn_reactor(reactor_pool_size, future)
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        socket.set_nonblocking(true)?;
        Ok(Arc::new(DatagramSocket {
            io: tokio::net::UdpSocket::from_std(socket)?,
            gate: Arc::clone(&self.gate),
            held: Mutex::new(VecDeque::new()),
            drained: AtomicBool::new(false),
        }))
    }

    fn wrap_tcp_listener(&self, listener: std::net::TcpListener) -> io::Result<Arc<dyn AsyncTcpListener>> {
        TokioRuntime.wrap_tcp_listener(listener)
    }

    fn connect_tcp<'a>(
        &'a self,
        remote_addr: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = io::Result<Arc<dyn AsyncTcpStream>>> + Send + 'a>> {
        TokioRuntime.connect_tcp(remote_addr)
    }

    fn resolve_host<'a>(
        &'a self,
        host: &'a str,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'a>> {
        TokioRuntime.resolve_host(host)
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        TokioRuntime.sleep(duration)
    }

    fn interval(&self, period: Duration) -> Box<dyn AsyncInterval> {
        TokioRuntime.interval(period)
    }

    fn block_on(&self, future: Pin<Box<dyn Future<Output = ()> + '_>>) {
        TokioRuntime.block_on(future);
    }

    fn yield_now(&self) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        TokioRuntime.yield_now()
    }

    fn name(&self) -> &'static str {
        "webphone-tokio"
    }
}

/// A UDP socket that sends and receives one datagram at a time.
struct DatagramSocket {
    io: tokio::net::UdpSocket,
    gate: Arc<IceGate>,
    /// Non-STUN datagrams that arrived before the gate opened.
    held: Mutex<VecDeque<(Vec<u8>, SocketAddr)>>,
    /// The gate is open and `held` empty for good: nothing more is held
    /// once it is open, so the receive path no longer takes the lock.
    drained: AtomicBool,
}

impl DatagramSocket {
    fn held(&self) -> MutexGuard<'_, VecDeque<(Vec<u8>, SocketAddr)>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// STUN, by the first byte of a datagram (RFC 7983: 0–3; DTLS is 20–63,
/// RTP and RTCP 128–191).
fn is_stun(datagram: &[u8]) -> bool {
    datagram.first().is_some_and(|&b| b < 4)
}

fn fill(meta: &mut RecvMeta, addr: SocketAddr, len: usize) {
    *meta = RecvMeta::default();
    meta.addr = addr;
    meta.len = len;
    meta.stride = len.max(1);
}

impl fmt::Debug for DatagramSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatagramSocket").field("local", &self.io.local_addr().ok()).finish()
    }
}

impl AsyncUdpSocket for DatagramSocket {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    /// One datagram: the driver asks for GSO segments only from sockets that
    /// report [`max_gso_segments`](AsyncUdpSocket::max_gso_segments) above
    /// one, and this one reports one. ECN marks are not set.
    fn poll_send(&self, cx: &mut Context<'_>, transmit: &Transmit<'_>) -> Poll<io::Result<usize>> {
        self.io.poll_send_to(cx, transmit.contents, transmit.destination)
    }

    /// One datagram into `bufs[0]` (a datagram longer than the buffer is
    /// truncated, as with any `recvfrom`). Before the gate opens, non-STUN
    /// datagrams are held back; after, held ones come first.
    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let (Some(buf), Some(meta)) = (bufs.first_mut(), meta.first_mut()) else {
            return Poll::Ready(Ok(0));
        };
        let open = self.gate.is_open();
        if open && !self.drained.load(Ordering::Relaxed) {
            let mut held = self.held();
            if let Some((datagram, addr)) = held.pop_front() {
                let len = datagram.len().min(buf.len());
                buf[..len].copy_from_slice(&datagram[..len]);
                fill(meta, addr, len);
                return Poll::Ready(Ok(1));
            }
            self.drained.store(true, Ordering::Relaxed);
        }
        loop {
            let mut read = ReadBuf::new(buf);
            let addr = match self.io.poll_recv_from(cx, &mut read) {
                Poll::Ready(Ok(addr)) => addr,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    if !open && !self.held().is_empty() {
                        self.gate.wake_on_open(cx.waker());
                    }
                    return Poll::Pending;
                }
            };
            let datagram = read.filled();
            if !open
                && is_stun(datagram)
                && let Some(response) = self.gate.early_answer(datagram, addr)
            {
                tracing::trace!(from = %addr, "answering an early connectivity check");
                self.gate.answered.fetch_add(1, Ordering::Relaxed);
                // A lost answer is a lost check: the remote checks again.
                let _ = self.io.try_send_to(&response, addr);
                continue;
            }
            if open || is_stun(datagram) {
                let len = datagram.len();
                fill(meta, addr, len);
                return Poll::Ready(Ok(1));
            }
            let mut held = self.held();
            if held.len() < EARLY_HOLD {
                tracing::trace!(from = %addr, len = datagram.len(), "holding a datagram until ICE is connected");
                held.push_back((datagram.to_vec(), addr));
                self.gate.held.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Datagrams of every size up to the driver's 2000-byte buffer cross
    /// intact, one per receive, with their source address; none is merged
    /// with the next.
    #[tokio::test]
    async fn one_datagram_per_receive() {
        let (gate, a, b, to) = two_sockets();
        gate.open();
        assert_eq!((a.max_gro_segments(), a.max_gso_segments()), (1, 1));
        let sizes = [0usize, 1, 160, 1200, 1500, 2000];
        for (i, &n) in sizes.iter().enumerate() {
            let payload = vec![i as u8; n];
            assert_eq!(a.send_to(&payload, to).await.unwrap(), n);
        }
        for (i, &n) in sizes.iter().enumerate() {
            let mut buf = vec![0u8; 2000];
            let mut meta = [RecvMeta::default(); 4];
            let got = std::future::poll_fn(|cx| {
                let mut bufs = [IoSliceMut::new(&mut buf)];
                b.poll_recv(cx, &mut bufs, &mut meta)
            })
            .await
            .unwrap();
            assert_eq!(got, 1);
            assert_eq!(meta[0].len, n, "datagram {i}");
            assert!(meta[0].stride >= 1);
            assert_eq!(meta[0].addr, a.local_addr().unwrap());
            assert!(buf[..n].iter().all(|&x| x == i as u8));
        }
    }

    type Socket = Arc<dyn AsyncUdpSocket>;

    /// Two loopback sockets of one peer's runtime, its gate (closed), and the
    /// second socket's address.
    fn two_sockets() -> (Arc<IceGate>, Socket, Socket, SocketAddr) {
        let runtime = PeerRuntime::default();
        let socket = || runtime.wrap_udp_socket(std::net::UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
        let (a, b) = (socket(), socket());
        let to = b.local_addr().unwrap();
        (runtime.gate, a, b, to)
    }

    async fn recv(socket: &Arc<dyn AsyncUdpSocket>) -> (Vec<u8>, SocketAddr) {
        let mut buf = vec![0u8; 2000];
        let mut meta = [RecvMeta::default(); 1];
        std::future::poll_fn(|cx| {
            let mut bufs = [IoSliceMut::new(&mut buf)];
            socket.poll_recv(cx, &mut bufs, &mut meta)
        })
        .await
        .unwrap();
        buf.truncate(meta[0].len);
        (buf, meta[0].addr)
    }

    /// Before ICE is connected, STUN passes and a DTLS record waits; opening
    /// the gate wakes the waiting receive, which gets the record, from its
    /// sender.
    #[tokio::test]
    async fn datagrams_before_ice_wait_for_the_gate() {
        let (gate, a, b, to) = two_sockets();
        let client_hello = [22u8, 0xfe, 0xfd, 0, 0];
        a.send_to(&[0, 1, 0, 0], to).await.unwrap();
        a.send_to(&client_hello, to).await.unwrap();
        a.send_to(&[0, 1, 0, 1], to).await.unwrap();
        assert_eq!(recv(&b).await.0, [0, 1, 0, 0]);
        // The record is skipped (held), the STUN after it comes through.
        assert_eq!(recv(&b).await.0, [0, 1, 0, 1]);
        let waiting = tokio::spawn({
            let b = Arc::clone(&b);
            async move { recv(&b).await }
        });
        tokio::task::yield_now().await;
        gate.open();
        let (datagram, from) = tokio::time::timeout(Duration::from_secs(10), waiting).await.unwrap().unwrap();
        assert_eq!(datagram, client_hello);
        assert_eq!(from, a.local_addr().unwrap());
        // Open: records pass at once.
        a.send_to(&client_hello[..3], to).await.unwrap();
        assert_eq!(recv(&b).await.0, client_hello[..3]);
    }

    /// A flood before ICE keeps at most [`EARLY_HOLD`] datagrams.
    #[tokio::test]
    async fn the_hold_is_bounded() {
        let (gate, a, b, to) = two_sockets();
        for i in 0..3 * EARLY_HOLD {
            a.send_to(&[128, i as u8], to).await.unwrap();
        }
        a.send_to(&[1, 1], to).await.unwrap();
        assert_eq!(recv(&b).await.0, [1, 1]);
        gate.open();
        for i in 0..EARLY_HOLD {
            assert_eq!(recv(&b).await.0, [128, i as u8]);
        }
        a.send_to(&[1, 2], to).await.unwrap();
        assert_eq!(recv(&b).await.0, [1, 2], "only the first {EARLY_HOLD} were held");
    }
}

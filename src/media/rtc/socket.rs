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

use std::fmt;
use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::ReadBuf;
use webrtc::runtime::{
    AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, JoinHandle, RecvMeta, Runtime, TokioRuntime,
    Transmit,
};

/// webrtc's [`TokioRuntime`] with one-datagram UDP sockets (see the module
/// doc).
#[derive(Debug, Default)]
pub(crate) struct PeerRuntime;

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
        Ok(Arc::new(DatagramSocket { io: tokio::net::UdpSocket::from_std(socket)? }))
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
        Box::pin(async move { tokio::net::lookup_host(host).await.map(Iterator::collect) })
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
    /// truncated by the kernel, as with any `recvfrom`).
    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let (Some(buf), Some(meta)) = (bufs.first_mut(), meta.first_mut()) else {
            return Poll::Ready(Ok(0));
        };
        let mut read = ReadBuf::new(buf);
        let addr = ready!(self.io.poll_recv_from(cx, &mut read))?;
        let len = read.filled().len();
        *meta = RecvMeta::default();
        meta.addr = addr;
        meta.len = len;
        meta.stride = len.max(1);
        Poll::Ready(Ok(1))
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
        let runtime = PeerRuntime;
        let a = runtime.wrap_udp_socket(std::net::UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
        let b = runtime.wrap_udp_socket(std::net::UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
        assert_eq!((a.max_gro_segments(), a.max_gso_segments()), (1, 1));
        let sizes = [0usize, 1, 160, 1200, 1500, 2000];
        for (i, &n) in sizes.iter().enumerate() {
            let payload = vec![i as u8; n];
            assert_eq!(a.send_to(&payload, b.local_addr().unwrap()).await.unwrap(), n);
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
}

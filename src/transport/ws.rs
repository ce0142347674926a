//! SIP over WebSocket (RFC 7118): open a `ws://` or `wss://` connection that
//! speaks the `sip` subprotocol, and move one SIP message per frame.

use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::{Error as WsError, ProtocolError};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use super::tls::TlsConfig;
use crate::Error;
use crate::error::FailureKind;

/// A validated server address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ServerUrl {
    url: String,
    secure: bool,
}

impl ServerUrl {
    /// Accepts `ws://host[:port][/path]` and `wss://...`.
    pub(crate) fn parse(url: &str) -> Result<ServerUrl, Error> {
        let bad = |reason: &str| Error::InvalidServer { url: url.to_string(), reason: reason.to_string() };
        let lower = url.to_ascii_lowercase();
        let (secure, rest) = if let Some(r) = lower.strip_prefix("wss://") {
            (true, r)
        } else if let Some(r) = lower.strip_prefix("ws://") {
            (false, r)
        } else {
            return Err(bad("scheme must be ws:// or wss://"));
        };
        let authority = rest.split('/').next().unwrap_or("");
        if authority.is_empty() || authority.contains(char::is_whitespace) {
            return Err(bad("missing host"));
        }
        url.into_client_request().map_err(|e| bad(&e.to_string()))?;
        Ok(ServerUrl { url: url.to_string(), secure })
    }

    /// The URL as given.
    pub(crate) fn as_str(&self) -> &str {
        &self.url
    }

    /// True for `wss://`.
    pub(crate) fn is_secure(&self) -> bool {
        self.secure
    }

    /// Via transport token for this server: `WS` or `WSS`.
    pub(crate) fn via_transport(&self) -> &'static str {
        if self.secure { "WSS" } else { "WS" }
    }
}

/// A received WebSocket frame, as the phone sees it.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// A SIP message (text or binary frame).
    Sip(Bytes),
    /// A keep-alive answer (pong frame, or a CRLF / double CRLF text frame).
    KeepAlive,
    /// The server closed the connection.
    Closed(String),
}

/// An open SIP-over-WebSocket connection.
pub(crate) struct Connection {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Connection {
    /// Connects and performs the handshake offering `Sec-WebSocket-Protocol: sip`.
    /// Fails with [`Error::SubprotocolRejected`] when the server does not accept it.
    pub(crate) async fn connect(server: &ServerUrl, tls: &TlsConfig, timeout: Duration) -> Result<Connection, Error> {
        let mut request = server
            .as_str()
            .into_client_request()
            .map_err(|e| Error::InvalidServer { url: server.as_str().to_string(), reason: e.to_string() })?;
        request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static("sip"));
        let connector = if server.is_secure() { Connector::Rustls(tls.client_config()?) } else { Connector::Plain };
        let mut config = WebSocketConfig::default();
        config.max_message_size = Some(crate::sip::MAX_MESSAGE_SIZE * 2);
        let connect = tokio_tungstenite::connect_async_tls_with_config(request, Some(config), true, Some(connector));
        let failed =
            |kind: FailureKind, reason: String| Error::Connect { server: server.as_str().to_string(), reason, kind };
        let result = tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| failed(FailureKind::Timeout, format!("no answer within {timeout:?}")))?;
        match result {
            Ok((stream, _response)) => Ok(Connection { stream }),
            Err(e) => match classify(&e) {
                FailureKind::Subprotocol => Err(Error::SubprotocolRejected { server: server.as_str().to_string() }),
                kind => Err(failed(kind, describe(&e))),
            },
        }
    }

    /// Sends one SIP message as a text frame.
    pub(crate) async fn send_sip(&mut self, bytes: Bytes) -> Result<(), String> {
        // SIP heads are UTF-8; a binary body makes the frame binary (RFC 7118 §5).
        let msg = match tungstenite::Utf8Bytes::try_from(bytes.clone()) {
            Ok(text) => WsMessage::Text(text),
            Err(_) => WsMessage::Binary(bytes),
        };
        self.stream.send(msg).await.map_err(|e| e.to_string())
    }

    /// Sends a WebSocket ping frame.
    pub(crate) async fn send_ping(&mut self) -> Result<(), String> {
        self.stream.send(WsMessage::Ping(Bytes::new())).await.map_err(|e| e.to_string())
    }

    /// Sends an RFC 5626 double-CRLF ping.
    pub(crate) async fn send_crlf_ping(&mut self) -> Result<(), String> {
        self.stream.send(WsMessage::Text("\r\n\r\n".into())).await.map_err(|e| e.to_string())
    }

    /// Waits for the next frame. Pings are answered by the library; a
    /// Close is answered before `Closed` is returned.
    pub(crate) async fn recv(&mut self) -> Incoming {
        loop {
            return match self.stream.next().await {
                None => Incoming::Closed("connection closed".into()),
                Some(Err(e)) => Incoming::Closed(e.to_string()),
                Some(Ok(WsMessage::Text(t))) => {
                    if t.as_str().trim_matches(['\r', '\n']).is_empty() {
                        Incoming::KeepAlive
                    } else {
                        Incoming::Sip(Bytes::from(t))
                    }
                }
                Some(Ok(WsMessage::Binary(b))) => Incoming::Sip(b),
                Some(Ok(WsMessage::Pong(_))) | Some(Ok(WsMessage::Ping(_))) => Incoming::KeepAlive,
                Some(Ok(WsMessage::Close(frame))) => {
                    // Echo the Close (RFC 6455 §5.5.1): tungstenite queued the
                    // reply (1002 for a code not allowed on the wire); a flush
                    // sends it (a send would be refused after a Close).
                    let _ = tokio::time::timeout(Duration::from_secs(1), self.stream.flush()).await;
                    Incoming::Closed(frame.map_or("closed by server".into(), |f| {
                        format!("closed by server: {} {}", u16::from(f.code), f.reason)
                    }))
                }
                Some(Ok(WsMessage::Frame(_))) => continue,
            };
        }
    }

    /// Closes the connection politely (best effort).
    pub(crate) async fn close(&mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), self.stream.close(None)).await;
    }
}

/// The kind of a failed connection attempt, from tungstenite's error: TLS
/// errors arrive as I/O errors wrapping rustls' error (tokio-rustls), a
/// refused upgrade as the HTTP response.
fn classify(e: &WsError) -> FailureKind {
    match e {
        WsError::Protocol(ProtocolError::SecWebSocketSubProtocolError(_)) => FailureKind::Subprotocol,
        WsError::Http(resp) if resp.status().is_server_error() => FailureKind::ServerError,
        WsError::Http(_) => FailureKind::HandshakeRefused,
        WsError::Tls(tungstenite::error::TlsError::Rustls(e)) => classify_rustls(e),
        WsError::Tls(_) => FailureKind::Certificate,
        WsError::Io(io) => match io.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
            Some(e) => classify_rustls(e),
            None if io.kind() == std::io::ErrorKind::ConnectionRefused => FailureKind::ConnectionRefused,
            None if io.kind() == std::io::ErrorKind::TimedOut => FailureKind::Timeout,
            None => FailureKind::Network,
        },
        _ => FailureKind::Network,
    }
}

fn classify_rustls(e: &rustls::Error) -> FailureKind {
    match e {
        rustls::Error::InvalidCertificate(_)
        | rustls::Error::NoCertificatesPresented
        | rustls::Error::InvalidCertRevocationList(_) => FailureKind::Certificate,
        _ => FailureKind::Tls,
    }
}

/// A one-line reason for a failed attempt.
fn describe(e: &WsError) -> String {
    match e {
        WsError::Http(resp) => format!("handshake answered HTTP {}", resp.status()),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(e: std::io::Error) -> WsError {
        WsError::Io(e)
    }

    #[test]
    fn failures_are_classified() {
        use rustls::{CertificateError, Error as TlsErr};
        use std::io::{Error as IoError, ErrorKind};
        // tokio-rustls wraps rustls' error in an InvalidData I/O error.
        let tls = |e: TlsErr| io(IoError::new(ErrorKind::InvalidData, e));
        assert_eq!(
            classify(&tls(TlsErr::InvalidCertificate(CertificateError::UnknownIssuer))),
            FailureKind::Certificate
        );
        assert_eq!(classify(&tls(TlsErr::InvalidCertificate(CertificateError::Expired))), FailureKind::Certificate);
        assert_eq!(classify(&tls(TlsErr::NoCertificatesPresented)), FailureKind::Certificate);
        assert_eq!(classify(&tls(TlsErr::AlertReceived(rustls::AlertDescription::HandshakeFailure))), FailureKind::Tls);
        assert_eq!(classify(&io(IoError::from(ErrorKind::ConnectionRefused))), FailureKind::ConnectionRefused);
        assert_eq!(classify(&io(IoError::from(ErrorKind::TimedOut))), FailureKind::Timeout);
        assert_eq!(classify(&io(IoError::from(ErrorKind::ConnectionReset))), FailureKind::Network);
        let sub = WsError::Protocol(ProtocolError::SecWebSocketSubProtocolError(
            tungstenite::error::SubProtocolError::NoSubProtocol,
        ));
        assert_eq!(classify(&sub), FailureKind::Subprotocol);
        let http = |code: u16| {
            let resp = tungstenite::http::Response::builder().status(code).body(None).expect("a valid response");
            WsError::Http(Box::new(resp))
        };
        assert_eq!(classify(&http(404)), FailureKind::HandshakeRefused);
        assert_eq!(classify(&http(403)), FailureKind::HandshakeRefused);
        assert_eq!(classify(&http(503)), FailureKind::ServerError);
        assert_eq!(describe(&http(404)), "handshake answered HTTP 404 Not Found");
    }

    #[test]
    fn server_urls() {
        assert!(ServerUrl::parse("wss://sip.example.com:7443/ws").expect("valid").is_secure());
        assert_eq!(ServerUrl::parse("ws://127.0.0.1:8080").expect("valid").via_transport(), "WS");
        assert!(ServerUrl::parse("http://x").is_err());
        assert!(ServerUrl::parse("ws://").is_err());
    }
}

//! The little HTTP the control server needs: reading a request head (one
//! `GET`, bounded in size), telling a WebSocket upgrade from a page request,
//! and writing short responses. Anything else is refused.

use tokio::io::{AsyncRead, AsyncReadExt};

/// The largest request head read (request line and headers).
pub(crate) const MAX_HEAD: usize = 8 * 1024;

/// A request head, as far as the server cares.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct RequestHead {
    /// The method (`GET`).
    pub(crate) method: String,
    /// The path, without the query.
    pub(crate) path: String,
    /// The query's `token` parameter, percent-decoded.
    pub(crate) token: Option<String>,
    /// `Sec-WebSocket-Key` of an upgrade request (`Upgrade: websocket`).
    pub(crate) websocket_key: Option<String>,
}

/// Why a head could not be read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HeadError {
    /// Closed, or a read failed, before the head was complete.
    Closed,
    /// Longer than [`MAX_HEAD`].
    TooLarge,
    /// Not an HTTP/1.1 request head.
    Malformed(&'static str),
}

/// Reads a request head from `stream` (up to the blank line; a request body
/// is not expected and not read).
pub(crate) async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> Result<RequestHead, HeadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await.map_err(|_| HeadError::Closed)?;
        if n == 0 {
            return Err(HeadError::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = find_blank_line(&buf) {
            return parse_head(&buf[..end]);
        }
        if buf.len() > MAX_HEAD {
            return Err(HeadError::TooLarge);
        }
    }
}

fn find_blank_line(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// Parses a complete request head (ending with the blank line).
pub(crate) fn parse_head(head: &[u8]) -> Result<RequestHead, HeadError> {
    if head.len() > MAX_HEAD {
        return Err(HeadError::TooLarge);
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(HeadError::Malformed("incomplete head")),
        Err(_) => return Err(HeadError::Malformed("not an HTTP request")),
    }
    let method = req.method.ok_or(HeadError::Malformed("no method"))?.to_string();
    let target = req.path.ok_or(HeadError::Malformed("no path"))?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let header = |name: &str| {
        req.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).and_then(|h| std::str::from_utf8(h.value).ok())
    };
    let upgrade = header("upgrade").is_some_and(|v| v.trim().eq_ignore_ascii_case("websocket"));
    let websocket_key = if upgrade { header("sec-websocket-key").map(|k| k.trim().to_string()) } else { None };
    let token = query.split('&').find_map(|pair| pair.strip_prefix("token=")).map(percent_decode);
    Ok(RequestHead { method, path: path.to_string(), token, websocket_key })
}

/// `%XX` escapes and `+` decoded; an invalid escape is kept as it is.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => match (hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: Option<&u8>) -> Option<u8> {
    let b = *b?;
    (b as char).to_digit(16).map(|d| d as u8)
}

/// A complete response with a body and `Connection: close`.
pub(crate) fn response(status: &str, content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n\
         X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The `101 Switching Protocols` answer to an upgrade with `key`.
pub(crate) fn switching_protocols(key: &str) -> Vec<u8> {
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n")
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_an_upgrade_with_its_token() {
        let head = b"GET /control?x=1&token=a%20b%2Bc HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: WebSocket\r\n\
                     Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
        let h = parse_head(head).unwrap();
        assert_eq!(h.method, "GET");
        assert_eq!(h.path, "/control");
        assert_eq!(h.token.as_deref(), Some("a b+c"));
        assert_eq!(h.websocket_key.as_deref(), Some("dGhlIHNhbXBsZSBub25jZQ=="));
        // RFC 6455's example key and accept value.
        let resp = String::from_utf8(switching_protocols("dGhlIHNhbXBsZSBub25jZQ==")).unwrap();
        assert!(resp.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"), "{resp}");
    }

    #[test]
    fn a_page_request_is_no_upgrade() {
        let h = parse_head(b"GET /nxcloud?token=t HTTP/1.1\r\nHost: x\r\nSec-WebSocket-Key: k\r\n\r\n").unwrap();
        assert_eq!((h.path.as_str(), h.websocket_key), ("/nxcloud", None));
        assert_eq!(parse_head(b"GET / HTTP/1.1\r\n\r\n").unwrap().token, None);
    }

    #[test]
    fn garbage_and_oversize_are_refused() {
        assert!(matches!(parse_head(b"\x00\x01 nope\r\n\r\n"), Err(HeadError::Malformed(_))));
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.extend(std::iter::repeat_n(b'a', MAX_HEAD));
        big.extend_from_slice(b"\r\n\r\n");
        assert_eq!(parse_head(&big), Err(HeadError::TooLarge));
    }

    #[test]
    fn percent_decoding_keeps_broken_escapes() {
        assert_eq!(percent_decode("%41%4a%zz%4"), "AJ%zz%4");
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("%e2%82%ac"), "€");
    }

    proptest! {
        #[test]
        fn any_bytes_parse_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse_head(&bytes);
        }

        #[test]
        fn any_query_decodes_without_panicking(q in ".{0,80}") {
            let head = format!("GET /control?token={q} HTTP/1.1\r\n\r\n");
            let _ = parse_head(head.as_bytes());
        }
    }
}

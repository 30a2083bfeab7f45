//! A raw HTTP/1.1 client for tests that need the bytes on the wire as they wrote them: request
//! targets an HTTP library would normalise (`..`, `%2e%2e`, `//`), malformed or oversized
//! requests. [`exchange`] sends a request as given; [`request`] builds a well-formed one with
//! any target. Both read the answer until the server closes the connection (every request
//! carries `Connection: close`) and parse it into a [`Reply`].
//!
//! Invariants: one request per connection; the body of a chunked answer is de-chunked; the answer
//! to a `HEAD` request has an empty body; a read error after bytes arrived (a reset after the
//! answer, as a server may do on a request it refuses) keeps what was read, and the answer is
//! parsed from it; no answer head within 30 s is a panic.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long a server may take to answer and close.
const ANSWER_WITHIN: Duration = Duration::from_secs(30);

/// An answer, read whole.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    /// The (de-chunked) body.
    pub body: Vec<u8>,
}

impl Reply {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one HTTP/1.1 request with the request target exactly as given (no normalisation of
/// `..`, `%2e%2e` or `//`), `Host: <addr>`, `Connection: close`, `headers` and a
/// `Content-Length` for `body`, and reads the whole answer.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut raw = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    raw.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut raw = raw.into_bytes();
    raw.extend_from_slice(body);
    exchange(addr, &raw).await
}

/// Sends `request` byte for byte (it should ask for `Connection: close`) and reads the answer
/// until the server closes the connection.
pub async fn exchange(addr: SocketAddr, request: &[u8]) -> Reply {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("send the request");
    let mut data = Vec::new();
    // A read error keeps what arrived before it: the answer is judged by its parse.
    let _ = tokio::time::timeout(ANSWER_WITHIN, stream.read_to_end(&mut data))
        .await
        .expect("the server answers and closes within 30 s");
    parse(&data, request.starts_with(b"HEAD "))
}

fn parse(data: &[u8], head_only: bool) -> Reply {
    let end = data
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(data)));
    let head = String::from_utf8_lossy(&data[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &data[end + 4..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
    let body = if head_only {
        Vec::new()
    } else if chunked {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    Reply {
        status,
        headers,
        body,
    }
}

/// The payload of a chunked body (chunk extensions and trailers dropped).
fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .expect("chunk size");
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

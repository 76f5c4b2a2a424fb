//! HTTP/1.1 by hand on a tokio `TcpStream`: requests are written byte for byte as the
//! generator built them, answers are parsed here, and nothing reconnects behind our back, so
//! every connection the server closes is seen.

use std::io::ErrorKind;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The largest answer head we accept before calling the answer malformed.
const MAX_HEAD: usize = 1 << 20;

/// A request as it goes on the wire.
#[derive(Clone, Debug, Default)]
pub struct WireRequest {
    /// Request line and headers, up to and including the empty line.
    pub head: Vec<u8>,
    /// What follows the head, already framed (chunk-encoded when the head says chunked).
    pub body: Vec<u8>,
    /// The head carries `Expect: 100-continue`: the body waits for the interim answer.
    pub expect_continue: bool,
    /// After the body, shut our sending side down (a truncated request: the head promised
    /// more than is sent).
    pub half_close: bool,
    /// A HEAD request: its answer has no body whatever its headers say.
    pub is_head: bool,
    /// The request itself ends the connection (`Connection: close`, or HTTP/1.0 without
    /// keep-alive).
    pub client_close: bool,
}

/// One parsed answer.
#[derive(Clone, Debug)]
pub struct Response {
    pub version: String,
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    /// No Content-Length and not chunked: the body ran until the server closed.
    pub close_delimited: bool,
}

impl Response {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    fn connection_has(&self, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
            .flat_map(|(_, v)| v.split(|b| *b == b','))
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    }

    /// The answer says the server ends the connection after it: `Connection: close`, a
    /// body delimited by the close, or an HTTP/1.0 answer without keep-alive.
    pub fn announces_close(&self) -> bool {
        self.connection_has("close")
            || self.close_delimited
            || (self.version == "HTTP/1.0" && !self.connection_has("keep-alive"))
    }
}

/// Why an exchange got no complete answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Failure {
    /// The server closed the connection (FIN).
    Closed,
    /// The connection was reset (RST) or a send failed.
    Reset,
    /// No answer within the deadline.
    Timeout,
    /// Bytes came that are not an HTTP/1.1 answer.
    Malformed,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Failure::Closed => "closed",
            Failure::Reset => "reset",
            Failure::Timeout => "no answer in time",
            Failure::Malformed => "malformed answer",
        })
    }
}

/// What came of one request.
#[derive(Debug)]
pub enum Outcome {
    /// A complete answer. `send_error` tells that sending the rest of the request failed
    /// (the server stopped reading while or after it answered).
    Answered {
        response: Response,
        send_error: Option<ErrorKind>,
    },
    /// No complete answer; `bytes_read` of one had arrived.
    Failed { failure: Failure, bytes_read: usize },
}

/// One client connection.
pub struct Connection {
    stream: TcpStream,
    /// Bytes read but not yet consumed.
    buffer: Vec<u8>,
    /// Bytes of the current answer read so far (for the report of a failure).
    progress: usize,
    /// Requests answered on this connection.
    pub answered: usize,
}

impl Connection {
    pub async fn open(port: u16) -> std::io::Result<Connection> {
        let stream = TcpStream::connect(("127.0.0.1", port)).await?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream,
            buffer: Vec::new(),
            progress: 0,
            answered: 0,
        })
    }

    /// Whether the server has already closed or reset this idle connection (checked
    /// without waiting). Bytes that arrived unasked are kept and make the next answer
    /// malformed.
    pub fn closed_by_peer(&mut self) -> bool {
        let mut byte = [0u8; 1];
        match self.stream.try_read(&mut byte) {
            Ok(0) => true,
            Ok(_) => {
                self.buffer.push(byte[0]);
                false
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => false,
            Err(_) => true,
        }
    }

    /// Sends `request` and reads its answer, within `deadline`.
    pub async fn exchange(&mut self, request: &WireRequest, deadline: Duration) -> Outcome {
        self.progress = 0;
        match tokio::time::timeout(deadline, self.exchange_inner(request)).await {
            Ok(outcome) => {
                if matches!(outcome, Outcome::Answered { .. }) {
                    self.answered += 1;
                }
                outcome
            }
            Err(_) => Outcome::Failed {
                failure: Failure::Timeout,
                bytes_read: self.progress,
            },
        }
    }

    async fn exchange_inner(&mut self, request: &WireRequest) -> Outcome {
        let Connection {
            stream,
            buffer,
            progress,
            ..
        } = self;
        let (mut reader, mut writer) = stream.split();
        let failed = |failure, progress: &usize| Outcome::Failed {
            failure,
            bytes_read: *progress,
        };

        if request.expect_continue {
            if writer.write_all(&request.head).await.is_err() {
                // The server may still have answered (or closed): see what arrived.
                return match read_response(&mut reader, buffer, progress, request.is_head).await {
                    Ok(response) => Outcome::Answered {
                        response,
                        send_error: Some(ErrorKind::BrokenPipe),
                    },
                    Err(failure) => failed(failure, progress),
                };
            }
            let first = match read_response(&mut reader, buffer, progress, request.is_head).await {
                Ok(response) => response,
                Err(failure) => return failed(failure, progress),
            };
            if first.status != 100 {
                // A final answer without the go-ahead. Unless it says it closes, the server
                // keeps reading the body the head announced (RFC 9110, 10.1.1): send it.
                let mut send_error = None;
                if !first.announces_close() && !request.client_close {
                    let sent = async {
                        writer.write_all(&request.body).await?;
                        if request.half_close {
                            writer.shutdown().await?;
                        }
                        Ok::<(), std::io::Error>(())
                    };
                    send_error = sent.await.err().map(|e| e.kind());
                }
                return Outcome::Answered {
                    response: first,
                    send_error,
                };
            }
            *progress = 0;
        }

        let body_start = if request.expect_continue {
            None
        } else {
            Some(&request.head)
        };
        let result = {
            let send = async {
                if let Some(head) = body_start {
                    writer.write_all(head).await?;
                }
                writer.write_all(&request.body).await?;
                if request.half_close {
                    writer.shutdown().await?;
                }
                Ok::<(), std::io::Error>(())
            };
            let read = read_response(&mut reader, buffer, progress, request.is_head);
            tokio::pin!(send);
            tokio::pin!(read);
            let mut sent: Option<std::io::Result<()>> = None;
            let answer = loop {
                tokio::select! {
                    result = &mut send, if sent.is_none() => sent = Some(result),
                    answer = &mut read => break answer,
                }
            };
            match answer {
                Err(failure) => Err(failure),
                Ok(response) => {
                    let send_error = match sent {
                        Some(result) => result.err().map(|e| e.kind()),
                        // Answered before the request was out. A server that closes has
                        // said so and will not read the rest; one that keeps the
                        // connection must take it all.
                        None if response.announces_close() => None,
                        None => send.await.err().map(|e| e.kind()),
                    };
                    Ok((response, send_error))
                }
            }
        };
        match result {
            Ok((response, send_error)) => Outcome::Answered {
                response,
                send_error,
            },
            Err(failure) => failed(failure, progress),
        }
    }
}

/// Reads one answer (skipping interim 1xx answers other than `100 Continue`, which is
/// returned as is).
async fn read_response<R: AsyncRead + Unpin>(
    reader: &mut R,
    buffer: &mut Vec<u8>,
    progress: &mut usize,
    is_head: bool,
) -> Result<Response, Failure> {
    loop {
        let head_end = loop {
            if let Some(at) = find(buffer, b"\r\n\r\n") {
                break at + 4;
            }
            if buffer.len() > MAX_HEAD {
                return Err(Failure::Malformed);
            }
            fill(reader, buffer, progress).await?;
        };
        let head: Vec<u8> = buffer.drain(..head_end).collect();
        let (version, status, headers) = parse_head(&head).ok_or(Failure::Malformed)?;
        let mut response = Response {
            version,
            status,
            headers,
            body: Vec::new(),
            close_delimited: false,
        };
        if (100..200).contains(&status) && status != 100 && status != 101 {
            continue;
        }
        if status == 100 || status == 101 || status == 204 || status == 304 || is_head {
            return Ok(response);
        }
        let chunked = response
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().ends_with(b"chunked"));
        if chunked {
            loop {
                match decode_chunked(buffer) {
                    Ok(Some((body, used))) => {
                        buffer.drain(..used);
                        response.body = body;
                        return Ok(response);
                    }
                    Ok(None) => fill(reader, buffer, progress).await?,
                    Err(()) => return Err(Failure::Malformed),
                }
            }
        }
        if let Some(length) = response.header("content-length") {
            let length: usize = std::str::from_utf8(length)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or(Failure::Malformed)?;
            while buffer.len() < length {
                fill(reader, buffer, progress).await?;
            }
            response.body = buffer.drain(..length).collect();
            return Ok(response);
        }
        // Delimited by the close.
        loop {
            match fill(reader, buffer, progress).await {
                Ok(()) => {}
                Err(Failure::Closed) => break,
                Err(other) => return Err(other),
            }
        }
        response.body = std::mem::take(buffer);
        response.close_delimited = true;
        return Ok(response);
    }
}

/// Reads more bytes into `buffer`; `Closed` at the end of the stream.
async fn fill<R: AsyncRead + Unpin>(
    reader: &mut R,
    buffer: &mut Vec<u8>,
    progress: &mut usize,
) -> Result<(), Failure> {
    let mut chunk = [0u8; 65536];
    match reader.read(&mut chunk).await {
        Ok(0) => Err(Failure::Closed),
        Ok(n) => {
            buffer.extend_from_slice(&chunk[..n]);
            *progress += n;
            Ok(())
        }
        Err(_) => Err(Failure::Reset),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

type Head = (String, u16, Vec<(String, Vec<u8>)>);

fn parse_head(head: &[u8]) -> Option<Head> {
    let text = head.strip_suffix(b"\r\n\r\n")?;
    let mut lines = text
        .split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let status_line = std::str::from_utf8(lines.next()?).ok()?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next()?.to_string();
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return None;
    }
    let status: u16 = parts.next()?.parse().ok()?;
    let mut headers = Vec::new();
    for line in lines {
        let colon = line.iter().position(|b| *b == b':')?;
        let name = std::str::from_utf8(&line[..colon]).ok()?.to_string();
        headers.push((name, line[colon + 1..].trim_ascii().to_vec()));
    }
    Some((version, status, headers))
}

/// A complete chunked body at the start of `data`: the body and the bytes it took; `None`
/// while incomplete.
fn decode_chunked(data: &[u8]) -> Result<Option<(Vec<u8>, usize)>, ()> {
    let mut at = 0;
    let mut body = Vec::new();
    loop {
        let Some(line_end) = find(&data[at..], b"\r\n") else {
            return Ok(None);
        };
        let line = &data[at..at + line_end];
        let size_text = line.split(|b| *b == b';').next().unwrap_or_default();
        let size =
            usize::from_str_radix(std::str::from_utf8(size_text).map_err(|_| ())?.trim(), 16)
                .map_err(|_| ())?;
        at += line_end + 2;
        if size == 0 {
            // Trailers, then the empty line.
            loop {
                let Some(end) = find(&data[at..], b"\r\n") else {
                    return Ok(None);
                };
                at += end + 2;
                if end == 0 {
                    return Ok(Some((body, at)));
                }
            }
        }
        if data.len() < at + size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&data[at..at + size]);
        at += size + 2;
    }
}

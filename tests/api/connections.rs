//! The serving layer under its own clients, spoken to over raw sockets with hand-written
//! HTTP/1.1 so that no client library hides a reconnect: keep-alive after answers given
//! without reading the body, slow heads and bodies, many connections, the connection limit.

use std::io;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{TestApp, free_port, spawn_app_with};

const UUID: &str = "6d1c5a3e-0b2f-4c7d-8e9a-1b2c3d4e5f60";

/// A request body larger than anything hyper keeps in its read buffer on its own.
const BIG: usize = 100 * 1024;

/// A body over the limit that the client is still sending when the answer comes: more than
/// the server's read buffer and the loopback socket buffers hold.
const HUGE: usize = 8 * 1024 * 1024;

/// Deadline for any single step of a conversation (they take milliseconds).
const STEP: Duration = Duration::from_secs(15);

/// Fails the test if `future` is not done within `limit`.
async fn within<T>(limit: Duration, what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, future)
        .await
        .unwrap_or_else(|_| panic!("timed out after {limit:?} waiting for {what}"))
}

/// A plain or TLS byte stream.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// One HTTP/1.1 answer as read off the wire.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the server announced that it closes the connection after this answer.
    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }

    /// The JSON body.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {self:?}"))
    }
}

/// A client connection that reads answers one after the other.
pub struct Conn {
    stream: Box<dyn Stream>,
    buffer: Vec<u8>,
}

impl Conn {
    /// A plain TCP connection to the test daemon.
    pub async fn plain(app: &TestApp) -> Conn {
        let port = app.address.rsplit(':').next().unwrap();
        let stream = within(
            STEP,
            "connect",
            TcpStream::connect(format!("127.0.0.1:{port}")),
        )
        .await
        .unwrap();
        Conn::over(Box::new(stream))
    }

    /// Wraps an established stream.
    pub fn over(stream: Box<dyn Stream>) -> Conn {
        Conn {
            stream,
            buffer: Vec::new(),
        }
    }

    /// Writes raw bytes.
    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        within(STEP, "a write", async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        })
        .await
    }

    async fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk).await?;
        self.buffer.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// Reads one answer (bodies framed by Content-Length only, as ours are).
    pub async fn answer(&mut self) -> io::Result<Answer> {
        within(STEP, "an answer", async {
            let head_end = loop {
                if let Some(at) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                    break at;
                }
                if self.fill().await? == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "connection closed before an answer; got {:?}",
                            String::from_utf8_lossy(&self.buffer)
                        ),
                    ));
                }
            };
            let head = String::from_utf8_lossy(&self.buffer[..head_end]).to_string();
            let mut lines = head.split("\r\n");
            let status_line = lines.next().unwrap_or_default();
            let status: u16 = status_line
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
            let headers: Vec<(String, String)> = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
                .collect();
            let length: usize = if (100..200).contains(&status) {
                0
            } else {
                headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                    .map(|(_, v)| v.parse().unwrap())
                    .unwrap_or_else(|| panic!("answer without Content-Length: {head}"))
            };
            self.buffer.drain(..head_end + 4);
            while self.buffer.len() < length {
                if self.fill().await? == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed inside a body",
                    ));
                }
            }
            let body = self.buffer.drain(..length).collect();
            Ok(Answer {
                status,
                headers,
                body,
            })
        })
        .await
    }

    /// Waits for the server to end the connection: `Ok(())` for an orderly close (FIN, and
    /// for TLS a close_notify), an error for a reset. Bytes other than the end are an error.
    pub async fn closed_cleanly(&mut self, limit: Duration) -> io::Result<()> {
        within(limit, "the server to close the connection", async {
            match self.fill().await? {
                0 if self.buffer.is_empty() => Ok(()),
                _ => Err(io::Error::other(format!(
                    "expected the end of the connection, got {:?}",
                    String::from_utf8_lossy(&self.buffer)
                ))),
            }
        })
        .await
    }

    /// Waits for the server to end the connection, in order or by a reset.
    pub async fn closed(&mut self, limit: Duration) {
        within(limit, "the server to close the connection", async {
            match self.fill().await {
                Ok(0) | Err(_) => {}
                Ok(_) => panic!(
                    "expected the end of the connection, got {:?}",
                    String::from_utf8_lossy(&self.buffer)
                ),
            }
        })
        .await
    }

    /// Whether the server has closed (or reset) the connection, without waiting for it.
    pub async fn is_closed_now(&mut self) -> bool {
        let mut probe = [0u8; 1];
        match tokio::time::timeout(Duration::from_millis(1), self.stream.read(&mut probe)).await {
            Err(_) => false,
            Ok(Ok(0)) | Ok(Err(_)) => true,
            Ok(Ok(_)) => panic!("unexpected bytes from the server"),
        }
    }
}

/// A request with a Content-Length body.
pub fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut text = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// `GET /` with no body.
fn get_root() -> Vec<u8> {
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".to_vec()
}

/// One early-answer case: the request, the status and message it gets.
struct Early {
    what: &'static str,
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, &'static str)>,
    status: u16,
    message: String,
    /// The answer ends the connection (else the connection must carry a next request).
    closes: bool,
}

fn early(
    what: &'static str,
    method: &'static str,
    path: &str,
    headers: &[(&'static str, &'static str)],
    status: u16,
    message: &str,
) -> Early {
    Early {
        what,
        method,
        path: path.to_string(),
        headers: headers.to_vec(),
        status,
        message: message.to_string(),
        closes: false,
    }
}

/// Sends `case` with a body of `size` bytes on a fresh connection, then checks that the
/// connection either serves a second request or was announced closed and then closed in
/// order (and which of the two the case expects). The error says what went wrong.
async fn keep_alive_survives(mut conn: Conn, case: &Early, size: usize) -> Result<(), String> {
    let what = case.what;
    let body = vec![b'x'; size];
    let first = request(case.method, &case.path, &case.headers, &body);
    conn.send(&first)
        .await
        .map_err(|e| format!("{what}: sending the request failed: {e}"))?;
    let answer = conn
        .answer()
        .await
        .map_err(|e| format!("{what}: no answer: {e}"))?;
    assert_eq!(answer.status, case.status, "{what}: {answer:?}");
    assert_eq!(
        answer.json(),
        serde_json::json!({"error": {"message": case.message}}),
        "{what}"
    );
    assert_eq!(
        answer.closes(),
        case.closes,
        "{what}: Connection: close expected {}: {answer:?}",
        case.closes
    );
    if answer.closes() {
        return conn.closed_cleanly(STEP).await.map_err(|e| {
            format!("{what}: announced Connection: close but did not close in order: {e}")
        });
    }
    let second = async {
        conn.send(&get_root()).await?;
        conn.answer().await
    }
    .await
    .map_err(|e| {
        format!(
            "{what}: kept alive (no Connection: close) but the next request on the \
             connection failed: {e}"
        )
    })?;
    assert_eq!(second.status, 200, "{what}: {second:?}");
    Ok(())
}

/// Runs every case on its own connection from `connect`, and fails listing all that failed.
async fn all_keep_alive<F, Fut>(cases: &[Early], size: usize, connect: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Conn>,
{
    let mut failures = Vec::new();
    for case in cases {
        if let Err(failure) = keep_alive_survives(connect().await, case, size).await {
            failures.push(failure);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The answers every daemon gives without reading the body.
fn early_cases() -> Vec<Early> {
    vec![
        early(
            "404 unknown route",
            "POST",
            "/v1/nowhere",
            &[],
            404,
            "Not Found",
        ),
        early(
            "405 wrong method",
            "PUT",
            "/v1/continue",
            &[],
            405,
            "Method Not Allowed",
        ),
        early(
            "406 unsupported API version",
            "POST",
            "/v1/rules",
            &[("X-OpenStack-Ironic-Inspector-API-Version", "1.99")],
            406,
            "Unsupported API version 1.99, supported range is 1.0 to 1.2",
        ),
        early(
            "400 invalid UUID",
            "POST",
            "/v1/introspection/not-a-uuid",
            &[],
            400,
            "Invalid UUID value",
        ),
    ]
}

#[tokio::test]
async fn early_answers_keep_the_connection_usable() {
    let app = spawn_app_with("").await;
    all_keep_alive(&early_cases(), BIG, || Conn::plain(&app)).await;
    app.stop().await;
}

#[tokio::test]
async fn one_connection_carries_many_early_answers() {
    // As a client reusing its connection would: every case, over and over, on one socket.
    let app = spawn_app_with("").await;
    let mut conn = Conn::plain(&app).await;
    let body = vec![b'x'; BIG];
    for round in 0..20 {
        for case in early_cases() {
            conn.send(&request(case.method, &case.path, &case.headers, &body))
                .await
                .unwrap_or_else(|e| panic!("round {round}, {}: {e}", case.what));
            let answer = conn
                .answer()
                .await
                .unwrap_or_else(|e| panic!("round {round}, {}: {e}", case.what));
            assert_eq!(answer.status, case.status, "round {round}: {answer:?}");
            assert!(!answer.closes(), "round {round}: {answer:?}");
        }
    }
    conn.send(&get_root()).await.unwrap();
    assert_eq!(conn.answer().await.unwrap().status, 200);
    app.stop().await;
}

#[tokio::test]
async fn over_limit_body_is_answered_413_and_closed_in_order() {
    let app = spawn_app_with("[oslo_middleware]\nmax_request_body_size = 51200\n").await;
    all_keep_alive(&[over_limit()], HUGE, || Conn::plain(&app)).await;
    app.stop().await;
}

/// A body over `max_request_body_size` sent to the ramdisk endpoint.
fn over_limit() -> Early {
    Early {
        closes: true,
        ..early(
            "413 body over the limit",
            "POST",
            "/v1/continue",
            &[],
            413,
            "Request body is too large",
        )
    }
}

#[tokio::test]
async fn keystone_401_keeps_the_connection_usable() {
    // Nothing listens there: a request without a token is refused before Keystone is asked.
    let app = spawn_app_with(&format!(
        "[DEFAULT]\nauth_strategy = keystone\n[keystone_authtoken]\n\
         identity_uri = http://127.0.0.1:{}/v3\nadmin_user = inspector\n\
         admin_password = secret\nadmin_tenant_name = service\n",
        free_port()
    ))
    .await;
    let case = early(
        "401 missing token",
        "POST",
        &format!("/v1/introspection/{UUID}"),
        &[],
        401,
        "Authentication required",
    );
    all_keep_alive(&[case], BIG, || Conn::plain(&app)).await;
    app.stop().await;
}

/// TLS client pieces: the test daemon's certificate is self-signed, so the client accepts
/// any certificate (it still checks the handshake signatures).
mod tls_client {
    use std::sync::Arc;
    use tokio_rustls::rustls::client::danger::{
        HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
    };
    use tokio_rustls::rustls::crypto::{CryptoProvider, ring};
    use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use tokio_rustls::rustls::{ClientConfig, DigitallySignedStruct, Error, SignatureScheme};

    #[derive(Debug)]
    struct AnyCertificate(Arc<CryptoProvider>);

    impl ServerCertVerifier for AnyCertificate {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, Error> {
            tokio_rustls::rustls::crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, Error> {
            tokio_rustls::rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }

    pub fn connector() -> tokio_rustls::TlsConnector {
        let provider = Arc::new(ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth();
        tokio_rustls::TlsConnector::from(Arc::new(config))
    }
}

/// A TLS connection to the test daemon.
async fn tls_conn(app: &TestApp) -> Conn {
    let port = app.address.rsplit(':').next().unwrap();
    let tcp = within(
        STEP,
        "connect",
        TcpStream::connect(format!("127.0.0.1:{port}")),
    )
    .await
    .unwrap();
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let stream = within(
        STEP,
        "the TLS handshake",
        tls_client::connector().connect(name, tcp),
    )
    .await
    .unwrap();
    Conn::over(Box::new(stream))
}

/// Settings for a daemon serving HTTPS with a fresh self-signed certificate in `dir`.
fn tls_settings(dir: &std::path::Path) -> String {
    let (cert, key) = crate::tls::self_signed(dir);
    format!("[DEFAULT]\nuse_ssl = true\nssl_cert_path = {cert}\nssl_key_path = {key}\n")
}

#[tokio::test]
async fn early_answers_keep_tls_connections_usable() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(&format!(
        "{}[oslo_middleware]\nmax_request_body_size = 204800\n",
        tls_settings(dir.path())
    ))
    .await;
    all_keep_alive(&early_cases(), BIG, || tls_conn(&app)).await;
    all_keep_alive(&[over_limit()], HUGE, || tls_conn(&app)).await;
    app.stop().await;
}

/// A daemon with `[DEFAULT]` options `extra` and a node under introspection.
async fn app_with_node(extra: &str) -> TestApp {
    let app = spawn_app_with(&format!("[DEFAULT]\n{extra}")).await;
    app.state.node_cache.add_node(UUID, None).await.unwrap();
    app
}

fn get_status() -> Vec<u8> {
    request("GET", &format!("/v1/introspection/{UUID}"), &[], b"")
}

#[tokio::test]
async fn idle_heads_neither_block_service_nor_outlive_the_header_timeout() {
    let app = app_with_node("client_header_timeout = 10\n").await;
    let mut idle = Vec::new();
    for _ in 0..200 {
        let mut conn = Conn::plain(&app).await;
        conn.send(b"GET /v1/introspection/ HTTP/1.1\r\nHost: 127.0.")
            .await
            .unwrap();
        idle.push(conn);
    }
    // Connections are accepted in order: these 200 are the server's before this one.
    let started = Instant::now();
    let mut conn = Conn::plain(&app).await;
    conn.send(&get_status()).await.unwrap();
    let answer = conn.answer().await.unwrap();
    let took = started.elapsed();
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json()["finished"], false);
    assert!(took < Duration::from_secs(1), "answered in {took:?}");
    for conn in &mut idle {
        assert!(
            !conn.is_closed_now().await,
            "closed before the header timeout"
        );
    }
    // Each one is closed once its head is 10 s late.
    for conn in &mut idle {
        conn.closed_cleanly(Duration::from_secs(60)).await.unwrap();
    }
    app.stop().await;
}

/// Sends `head` and then one body byte every 100 ms until the server answers; the answer.
async fn trickle(app: &TestApp, head: &[u8]) -> (Answer, Conn) {
    let port = app.address.rsplit(':').next().unwrap();
    let mut stream = TcpStream::connect(format!("127.0.0.1:{port}"))
        .await
        .unwrap();
    stream.write_all(head).await.unwrap();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    within(
        Duration::from_secs(60),
        "an answer to the trickling body",
        async {
            loop {
                tokio::select! {
                    readable = stream.readable() => break readable.unwrap(),
                    _ = tick.tick() => stream.write_all(b" ").await.unwrap(),
                }
            }
        },
    )
    .await;
    let mut conn = Conn::over(Box::new(stream));
    (conn.answer().await.unwrap(), conn)
}

#[tokio::test]
async fn trickling_bodies_are_answered_408_and_closed() {
    let app = app_with_node("client_body_timeout = 1\n").await;
    // Bytes keep coming, every 100 ms, yet the whole body would take 100 s.
    let head = b"POST /v1/continue HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n{";
    let (answer, mut conn) = trickle(&app, head).await;
    assert_eq!(answer.status, 408, "{answer:?}");
    assert!(answer.closes(), "{answer:?}");
    assert_eq!(
        answer.json(),
        serde_json::json!({"error": {"message": "Request body was not received within 1 seconds"}})
    );
    assert_eq!(
        answer.header("X-OpenStack-Ironic-Inspector-API-Maximum-Version"),
        Some("1.2")
    );
    conn.closed_cleanly(STEP).await.unwrap();

    // A route that does not read the body answers once the rest of it is given up on.
    let head = b"POST /v1/nowhere HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n{";
    let (answer, mut conn) = trickle(&app, head).await;
    assert_eq!(answer.status, 404, "{answer:?}");
    assert!(answer.closes(), "{answer:?}");
    conn.closed_cleanly(STEP).await.unwrap();

    // Other clients were served all along.
    let mut conn = Conn::plain(&app).await;
    conn.send(&get_status()).await.unwrap();
    assert_eq!(conn.answer().await.unwrap().status, 200);
    app.stop().await;
}

#[tokio::test]
async fn kept_alive_connections_close_after_the_keepalive_timeout() {
    let app = app_with_node("keepalive_timeout = 1\n").await;
    let mut conn = Conn::plain(&app).await;
    conn.send(&get_status()).await.unwrap();
    let answer = conn.answer().await.unwrap();
    assert_eq!(answer.status, 200);
    assert!(!answer.closes(), "{answer:?}");
    conn.closed_cleanly(Duration::from_secs(30)).await.unwrap();
    app.stop().await;

    // 0: one request per connection.
    let app = app_with_node("keepalive_timeout = 0\n").await;
    let mut conn = Conn::plain(&app).await;
    conn.send(&get_status()).await.unwrap();
    let answer = conn.answer().await.unwrap();
    assert_eq!(answer.status, 200);
    assert!(answer.closes(), "{answer:?}");
    conn.closed_cleanly(STEP).await.unwrap();
    app.stop().await;
}

#[tokio::test]
async fn at_the_connection_limit_waiting_connections_make_room() {
    let app = app_with_node("max_connections = 2\n").await;
    let mut first = Conn::plain(&app).await;
    let mut second = Conn::plain(&app).await;
    for conn in [&mut first, &mut second] {
        conn.send(&get_status()).await.unwrap();
        assert_eq!(conn.answer().await.unwrap().status, 200);
    }
    // Both wait for a next request; the newcomer is served, and the connection that waited
    // longest makes room for it.
    let mut third = Conn::plain(&app).await;
    third.send(&get_status()).await.unwrap();
    assert_eq!(third.answer().await.unwrap().status, 200);
    first.closed_cleanly(STEP).await.unwrap();
    second.send(&get_status()).await.unwrap();
    assert_eq!(second.answer().await.unwrap().status, 200);
    app.stop().await;
}

#[tokio::test]
async fn at_the_connection_limit_newcomers_wait_for_busy_connections() {
    let app = app_with_node("max_connections = 2\n").await;
    // Two requests in progress: the server asked for their bodies (100 Continue), which
    // never come.
    let head = b"POST /v1/continue HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\
                 Expect: 100-continue\r\n\r\n";
    let mut busy = Vec::new();
    for _ in 0..2 {
        let mut conn = Conn::plain(&app).await;
        conn.send(head).await.unwrap();
        assert_eq!(conn.answer().await.unwrap().status, 100);
        busy.push(conn);
    }
    // A newcomer is not served while both are busy (a request in progress is never cut)...
    let mut newcomer = Conn::plain(&app).await;
    newcomer.send(&get_status()).await.unwrap();
    let early = tokio::time::timeout(Duration::from_secs(1), newcomer.answer()).await;
    assert!(early.is_err(), "served beyond the limit: {early:?}");
    // ... and is as soon as one of them goes.
    drop(busy.remove(0));
    let answer = newcomer.answer().await.unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    // The other one was not disturbed: its body completes its request.
    let mut other = busy.remove(0);
    other.send(b"not json!!").await.unwrap();
    let answer = other.answer().await.unwrap();
    assert_eq!(answer.status, 400, "{answer:?}");
    app.stop().await;
}

#[tokio::test]
async fn stalled_tls_handshakes_are_closed_and_do_not_block_others() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(&format!(
        "{}tls_handshake_timeout = 1\n",
        tls_settings(dir.path())
    ))
    .await;
    let port = app.address.rsplit(':').next().unwrap();
    let stalled = TcpStream::connect(format!("127.0.0.1:{port}"))
        .await
        .unwrap();
    let mut stalled = Conn::over(Box::new(stalled));
    let mut conn = tls_conn(&app).await;
    conn.send(&get_root()).await.unwrap();
    assert_eq!(conn.answer().await.unwrap().status, 200);
    stalled.closed(Duration::from_secs(30)).await;
    app.stop().await;
}

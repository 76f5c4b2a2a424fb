//! A fault-injecting HTTP proxy for tests: it listens on a loopback port, forwards each
//! request to a real server (here Ironic) and can be told at run time to misbehave, per
//! request or per method and path:
//! - answer late ([`FaultProxy::delay`]),
//! - read the request and never answer ([`FaultProxy::hang`]),
//! - reset the connection once the request is read ([`FaultProxy::reset`]),
//! - answer an error itself, Ironic-style, for the next N requests ([`FaultProxy::fail`]),
//! - stop listening, so connections are refused, and listen again on the same port
//!   ([`FaultProxy::go_down`], [`FaultProxy::come_up`]),
//! - hand a request to the test and hold it, before forwarding it ([`FaultProxy::hold`]) or
//!   after Ironic answered it ([`FaultProxy::hold_answer`]), until the test releases or
//!   drops it: a deterministic way to stop the client at a chosen step.
//!
//! It speaks just enough HTTP/1.1 for an HTTP client such as the daemon's: keep-alive,
//! `Content-Length` bodies (a chunked request is refused with 501). Faults are rules, tried
//! in the order they were added; the first that matches a request and has uses left applies;
//! a request no rule matches is forwarded. Every request is recorded ([`FaultProxy::seen`]).
//!
//! The port is picked below the kernel's ephemeral range, so while the proxy is "down" no
//! outgoing connection of another process can take it, and [`FaultProxy::come_up`] can bind
//! it again.

// A toolbox: not every test uses every fault.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::ports::free_port;

/// Which requests a fault applies to: a method (or any) and a path without its query,
/// exact, or a prefix when it ends in `*`.
#[derive(Clone, Debug)]
pub struct Match {
    method: Option<String>,
    path: Option<String>,
}

impl Match {
    /// Every request.
    pub fn any() -> Match {
        Match {
            method: None,
            path: None,
        }
    }

    /// Requests with this method and path (`/v1/ports`, or `/v1/nodes/*` for a prefix).
    pub fn new(method: &str, path: &str) -> Match {
        Match {
            method: Some(method.to_ascii_uppercase()),
            path: Some(path.to_string()),
        }
    }

    /// Requests with this path, whatever their method.
    pub fn path(path: &str) -> Match {
        Match {
            method: None,
            path: Some(path.to_string()),
        }
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        let method_ok = self.method.as_deref().is_none_or(|m| m == method);
        let path_ok = match self.path.as_deref() {
            None => true,
            Some(pattern) => match pattern.strip_suffix('*') {
                Some(prefix) => path.starts_with(prefix),
                None => path == pattern,
            },
        };
        method_ok && path_ok
    }
}

/// What the proxy does to a matching request.
#[derive(Clone)]
enum Fault {
    Delay(Duration),
    Status(u16),
    Hang,
    Reset,
    HoldRequest(mpsc::UnboundedSender<Held>),
    HoldAnswer(mpsc::UnboundedSender<Held>),
}

impl Fault {
    fn name(&self) -> &'static str {
        match self {
            Fault::Delay(_) => "delay",
            Fault::Status(_) => "status",
            Fault::Hang => "hang",
            Fault::Reset => "reset",
            Fault::HoldRequest(_) => "hold",
            Fault::HoldAnswer(_) => "hold-answer",
        }
    }
}

struct Rule {
    matcher: Match,
    /// Uses left; `None` for as long as the rule stays.
    remaining: Option<usize>,
    fault: Fault,
}

/// A request the proxy saw, and what it did with it (`forward` or the fault's name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub action: &'static str,
}

/// A request held by the proxy. [`Held::release`] lets it go on (forwarded, or its answer
/// written); dropping it instead closes the client's connection without an answer (for a
/// held request, Ironic never sees it; for a held answer, Ironic has acted on it).
pub struct Held {
    pub method: String,
    pub path: String,
    /// Ironic's status, for a held answer.
    pub status: Option<u16>,
    release: oneshot::Sender<()>,
}

impl Held {
    /// Lets the request (or its answer) through.
    pub fn release(self) {
        let _ = self.release.send(());
    }
}

/// The requests held by one [`FaultProxy::hold`] or [`FaultProxy::hold_answer`] rule, in
/// the order they arrived.
pub struct Holds {
    rx: mpsc::UnboundedReceiver<Held>,
}

impl Holds {
    /// The next held request; panics naming `what` when none comes within `timeout`.
    pub async fn next(&mut self, what: &str, timeout: Duration) -> Held {
        match tokio::time::timeout(timeout, self.rx.recv()).await {
            Ok(Some(held)) => held,
            Ok(None) => panic!("the proxy stopped before {what}"),
            Err(_) => panic!("timed out after {timeout:?} waiting for {what} at the proxy"),
        }
    }
}

struct Shared {
    /// The server's root, e.g. `http://127.0.0.1:6385` (no trailing slash).
    upstream: String,
    client: reqwest::Client,
    rules: Mutex<Vec<Rule>>,
    seen: Mutex<Vec<Seen>>,
}

/// The listener's task; dropping it stops listening and closes every connection.
struct Serving {
    token: CancellationToken,
    accept: Option<JoinHandle<()>>,
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

/// The proxy. Dropping it stops it.
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`, what the client should be pointed at.
    pub url: String,
    port: u16,
    shared: Arc<Shared>,
    serving: tokio::sync::Mutex<Option<Serving>>,
}

impl FaultProxy {
    /// Starts a proxy in front of `upstream` (e.g. `http://127.0.0.1:6385`).
    pub async fn start(upstream: &str) -> FaultProxy {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_string(),
            client,
            rules: Mutex::new(Vec::new()),
            seen: Mutex::new(Vec::new()),
        });
        let listener = bind_below_ephemeral_range();
        let port = listener.local_addr().unwrap().port();
        let proxy = FaultProxy {
            url: format!("http://127.0.0.1:{port}"),
            port,
            shared,
            serving: tokio::sync::Mutex::new(None),
        };
        *proxy.serving.lock().await = Some(proxy.serve(TcpListener::from_std(listener).unwrap()));
        proxy
    }

    /// Answers matching requests `delay` late (whatever else happens to them), for as long
    /// as the rule stays.
    pub fn delay(&self, matcher: Match, delay: Duration) {
        self.add(matcher, None, Fault::Delay(delay));
    }

    /// Reads matching requests and never answers them (`count` of them, or all).
    pub fn hang(&self, matcher: Match, count: Option<usize>) {
        self.add(matcher, count, Fault::Hang);
    }

    /// Resets the connection (RST) of matching requests once they are read.
    pub fn reset(&self, matcher: Match, count: Option<usize>) {
        self.add(matcher, count, Fault::Reset);
    }

    /// Answers the next `count` matching requests with `status` itself, in Ironic's error
    /// format (409 reads as a node locked by a conductor, so clients retry it).
    pub fn fail(&self, matcher: Match, count: usize, status: u16) {
        self.add(matcher, Some(count), Fault::Status(status));
    }

    /// Holds every matching request before forwarding it, and hands it to the test.
    pub fn hold(&self, matcher: Match) -> Holds {
        let (tx, rx) = mpsc::unbounded_channel();
        self.add(matcher, None, Fault::HoldRequest(tx));
        Holds { rx }
    }

    /// Forwards every matching request, then holds Ironic's answer and hands it to the test.
    pub fn hold_answer(&self, matcher: Match) -> Holds {
        let (tx, rx) = mpsc::unbounded_channel();
        self.add(matcher, None, Fault::HoldAnswer(tx));
        Holds { rx }
    }

    /// Removes every fault: from now on, requests are forwarded.
    pub fn clear(&self) {
        self.shared.rules.lock().unwrap().clear();
    }

    /// Every request seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// How many requests with this method and path were seen.
    pub fn count(&self, matcher: &Match) -> usize {
        self.seen()
            .iter()
            .filter(|s| matcher.matches(&s.method, &s.path))
            .count()
    }

    /// "The server is down": stops listening (new connections are refused) and closes every
    /// open connection, held and hanging ones included. Returns once the port is closed.
    pub async fn go_down(&self) {
        let serving = self.serving.lock().await.take();
        if let Some(mut serving) = serving {
            serving.token.cancel();
            if let Some(accept) = serving.accept.take() {
                let _ = accept.await;
            }
        }
    }

    /// Listens again on the same port.
    pub async fn come_up(&self) {
        let mut serving = self.serving.lock().await;
        if serving.is_some() {
            return;
        }
        let listener = TcpListener::bind(("127.0.0.1", self.port))
            .await
            .unwrap_or_else(|e| panic!("the proxy cannot listen on port {} again: {e}", self.port));
        *serving = Some(self.serve(listener));
    }

    fn add(&self, matcher: Match, remaining: Option<usize>, fault: Fault) {
        self.shared.rules.lock().unwrap().push(Rule {
            matcher,
            remaining,
            fault,
        });
    }

    fn serve(&self, listener: TcpListener) -> Serving {
        let token = CancellationToken::new();
        let shared = Arc::clone(&self.shared);
        let accept_token = token.clone();
        let accept = tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = accept_token.cancelled() => return,
                    accepted = listener.accept() => accepted,
                };
                let Ok((stream, _)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let shared = Arc::clone(&shared);
                let token = accept_token.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        () = token.cancelled() => {}
                        () = serve_connection(&shared, stream) => {}
                    }
                });
            }
        });
        Serving {
            token,
            accept: Some(accept),
        }
    }
}

/// Binds 127.0.0.1 on a free port below the ephemeral range (see [`free_port`]).
fn bind_below_ephemeral_range() -> std::net::TcpListener {
    let port = free_port();
    let listener = std::net::TcpListener::bind(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("the proxy cannot listen on port {port}: {e}"));
    listener.set_nonblocking(true).unwrap();
    listener
}

/// One request off the wire.
struct Request {
    method: String,
    /// Path and query, as sent.
    target: String,
    /// Path without the query.
    path: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    close: bool,
}

/// One answer to write.
struct Answer {
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

/// What to do with one request, decided under the rules' lock.
enum Action {
    Forward,
    Fault(Fault),
}

impl Shared {
    /// The delay of every matching delay rule (they add up), and the first other matching
    /// rule with uses left.
    fn decide(&self, request: &Request) -> (Duration, Action) {
        let mut rules = self.rules.lock().unwrap();
        let matching = |rule: &Rule| rule.matcher.matches(&request.method, &request.path);
        let delay = rules
            .iter()
            .filter(|rule| matching(rule))
            .filter_map(|rule| match rule.fault {
                Fault::Delay(delay) => Some(delay),
                _ => None,
            })
            .sum();
        let found = rules.iter_mut().find(|rule| {
            !matches!(rule.fault, Fault::Delay(_)) && rule.remaining != Some(0) && matching(rule)
        });
        let action = match found {
            None => Action::Forward,
            Some(rule) => {
                if let Some(left) = rule.remaining.as_mut() {
                    *left -= 1;
                }
                Action::Fault(rule.fault.clone())
            }
        };
        let name = match &action {
            Action::Forward if delay > Duration::ZERO => "delay",
            Action::Forward => "forward",
            Action::Fault(fault) => fault.name(),
        };
        self.seen.lock().unwrap().push(Seen {
            method: request.method.clone(),
            path: request.path.clone(),
            action: name,
        });
        (delay, action)
    }

    async fn forward(&self, request: &Request) -> Answer {
        let Ok(method) = reqwest::Method::from_bytes(request.method.as_bytes()) else {
            return plain(400, "fault proxy: bad method");
        };
        let mut outgoing = self
            .client
            .request(method, format!("{}{}", self.upstream, request.target));
        for (name, value) in &request.headers {
            if !is_hop_by_hop(name) && !name.eq_ignore_ascii_case("host") {
                outgoing = outgoing.header(name.as_str(), value.as_slice());
            }
        }
        let response = match outgoing.body(request.body.clone()).send().await {
            Ok(response) => response,
            Err(e) => return plain(502, &format!("fault proxy: upstream failed: {e}")),
        };
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter(|(name, _)| !is_hop_by_hop(name.as_str()))
            .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
            .collect();
        match response.bytes().await {
            Ok(body) => Answer {
                status,
                headers,
                body: body.to_vec(),
            },
            Err(e) => plain(502, &format!("fault proxy: upstream body failed: {e}")),
        }
    }
}

fn is_hop_by_hop(name: &str) -> bool {
    [
        "connection",
        "keep-alive",
        "transfer-encoding",
        "content-length",
        "te",
        "trailer",
        "upgrade",
        "proxy-connection",
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h))
}

fn plain(status: u16, text: &str) -> Answer {
    Answer {
        status,
        headers: vec![("content-type".to_string(), b"text/plain".to_vec())],
        body: text.as_bytes().to_vec(),
    }
}

/// An error answer as Ironic writes it (`error_message` holding a JSON string).
fn ironic_error(status: u16, path: &str) -> Answer {
    let fault = match status {
        409 => format!(
            "Node {path} is locked by host fault-proxy, please retry after the current \
             operation is completed."
        ),
        503 => "Service temporarily unavailable (injected by the fault proxy).".to_string(),
        _ => format!("Injected failure {status} for {path}."),
    };
    let inner = serde_json::json!({"faultcode": "Server", "faultstring": fault, "debuginfo": null});
    let body = serde_json::json!({"error_message": inner.to_string()});
    Answer {
        status,
        headers: vec![("content-type".to_string(), b"application/json".to_vec())],
        body: body.to_string().into_bytes(),
    }
}

async fn serve_connection(shared: &Shared, mut stream: TcpStream) {
    let mut buffer = Vec::new();
    loop {
        let request = match read_request(&mut stream, &mut buffer).await {
            Ok(Some(request)) => request,
            Ok(None) => return,
            Err(answer) => {
                let _ = write_answer(&mut stream, &answer, true).await;
                return;
            }
        };
        let (delay, action) = shared.decide(&request);
        if delay > Duration::ZERO {
            tokio::time::sleep(delay).await;
        }
        let answer = match action {
            Action::Forward => shared.forward(&request).await,
            Action::Fault(Fault::Status(status)) => ironic_error(status, &request.path),
            Action::Fault(Fault::Hang) => {
                // Never answer; keep the connection until the client gives up.
                let mut sink = [0u8; 1024];
                while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
                return;
            }
            Action::Fault(Fault::Reset) => {
                let _ = stream.set_zero_linger();
                return;
            }
            Action::Fault(Fault::HoldRequest(tx)) => {
                if !hold(&tx, &request, None).await {
                    return;
                }
                shared.forward(&request).await
            }
            Action::Fault(Fault::HoldAnswer(tx)) => {
                let answer = shared.forward(&request).await;
                if !hold(&tx, &request, Some(answer.status)).await {
                    return;
                }
                answer
            }
            Action::Fault(Fault::Delay(_)) => unreachable!("delays are applied above"),
        };
        if write_answer(&mut stream, &answer, request.close)
            .await
            .is_err()
            || request.close
        {
            return;
        }
    }
}

/// Hands the request to the test and waits; true when released, false when dropped.
async fn hold(tx: &mpsc::UnboundedSender<Held>, request: &Request, status: Option<u16>) -> bool {
    let (release, released) = oneshot::channel();
    let held = Held {
        method: request.method.clone(),
        path: request.path.clone(),
        status,
        release,
    };
    if tx.send(held).is_err() {
        return false;
    }
    released.await.is_ok()
}

/// Reads one request. `Ok(None)` when the client closed the connection; `Err` with the
/// answer to give a request this proxy cannot handle.
async fn read_request(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
) -> Result<Option<Request>, Answer> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut parsed = httparse::Request::new(&mut headers);
        match parsed.parse(buffer) {
            Ok(httparse::Status::Complete(head_len)) => {
                let method = parsed.method.unwrap_or_default().to_string();
                let target = parsed.path.unwrap_or("/").to_string();
                let version = parsed.version.unwrap_or(1);
                let headers: Vec<(String, Vec<u8>)> = parsed
                    .headers
                    .iter()
                    .map(|h| (h.name.to_string(), h.value.to_vec()))
                    .collect();
                let header = |name: &str| {
                    headers
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case(name))
                        .map(|(_, v)| String::from_utf8_lossy(v).to_ascii_lowercase())
                };
                if header("transfer-encoding").is_some() {
                    return Err(plain(
                        501,
                        "fault proxy: chunked requests are not supported",
                    ));
                }
                let length: usize = header("content-length")
                    .map(|v| v.trim().parse().unwrap_or(0))
                    .unwrap_or(0);
                let close = match header("connection") {
                    Some(v) if v.contains("close") => true,
                    Some(v) if v.contains("keep-alive") => false,
                    _ => version == 0,
                };
                buffer.drain(..head_len);
                while buffer.len() < length {
                    match stream.read_buf(buffer).await {
                        Ok(0) | Err(_) => return Ok(None),
                        Ok(_) => {}
                    }
                }
                let body: Vec<u8> = buffer.drain(..length).collect();
                let path = target.split('?').next().unwrap_or("/").to_string();
                return Ok(Some(Request {
                    method,
                    target,
                    path,
                    headers,
                    body,
                    close,
                }));
            }
            Ok(httparse::Status::Partial) => {}
            Err(_) => return Err(plain(400, "fault proxy: malformed request")),
        }
        match stream.read_buf(buffer).await {
            Ok(0) | Err(_) => return Ok(None),
            Ok(_) => {}
        }
    }
}

async fn write_answer(stream: &mut TcpStream, answer: &Answer, close: bool) -> std::io::Result<()> {
    let reason = reqwest::StatusCode::from_u16(answer.status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Unknown");
    let mut out = format!("HTTP/1.1 {} {reason}\r\n", answer.status).into_bytes();
    for (name, value) in &answer.headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("content-length: {}\r\n", answer.body.len()).as_bytes());
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&answer.body);
    stream.write_all(&out).await?;
    stream.flush().await
}

/// The proxy itself, against a tiny upstream of our own.
#[cfg(test)]
mod tests {
    use super::*;

    /// An upstream that answers every request with `200 {"path": <path>}`.
    async fn upstream() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let mut buffer = Vec::new();
                    while let Ok(Some(request)) = read_request(&mut stream, &mut buffer).await {
                        let body = serde_json::json!({"path": request.target, "body": String::from_utf8_lossy(&request.body)});
                        let answer = Answer {
                            status: 200,
                            headers: vec![("content-type".into(), b"application/json".to_vec())],
                            body: body.to_string().into_bytes(),
                        };
                        if write_answer(&mut stream, &answer, false).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        url
    }

    /// A client that opens a connection per request, so that a connection the proxy closed
    /// (going down) is never reused.
    fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(0)
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn fault_proxy_forwards_and_injects_faults() {
        let proxy = FaultProxy::start(&upstream().await).await;
        let client = client();
        let get = |path: &str| client.get(format!("{}{path}", proxy.url)).send();

        let answer = client
            .post(format!("{}/v1/ports?x=1", proxy.url))
            .body("hello")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        let body: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(
            body,
            serde_json::json!({"path": "/v1/ports?x=1", "body": "hello"})
        );

        proxy.fail(Match::new("GET", "/v1/nodes/*"), 2, 409);
        for _ in 0..2 {
            let answer = get("/v1/nodes/n1").await.unwrap();
            assert_eq!(answer.status(), 409);
            let body: serde_json::Value = answer.json().await.unwrap();
            assert!(
                body["error_message"]
                    .as_str()
                    .unwrap()
                    .contains("is locked")
            );
        }
        assert_eq!(get("/v1/nodes/n1").await.unwrap().status(), 200);
        assert_eq!(get("/v1/other").await.unwrap().status(), 200);

        proxy.reset(Match::path("/reset"), Some(1));
        assert!(get("/reset").await.is_err(), "reset");
        assert_eq!(get("/reset").await.unwrap().status(), 200);

        proxy.hang(Match::path("/hang"), None);
        let err = client
            .get(format!("{}/hang", proxy.url))
            .timeout(Duration::from_secs(1))
            .send()
            .await
            .unwrap_err();
        assert!(err.is_timeout(), "{err}");

        let mut holds = proxy.hold(Match::path("/held"));
        let pending = tokio::spawn(get("/held"));
        let held = holds.next("the held request", Duration::from_secs(5)).await;
        assert_eq!((held.method.as_str(), held.path.as_str()), ("GET", "/held"));
        held.release();
        assert_eq!(pending.await.unwrap().unwrap().status(), 200);

        proxy.go_down().await;
        let err = get("/").await.unwrap_err();
        assert!(err.is_connect(), "{err}");
        proxy.come_up().await;
        assert_eq!(get("/").await.unwrap().status(), 200);

        proxy.clear();
        assert_eq!(get("/hang").await.unwrap().status(), 200);
        assert_eq!(proxy.count(&Match::new("GET", "/v1/nodes/n1")), 3);
    }
}

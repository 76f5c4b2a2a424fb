//! A fake Ironic for fault injection: an axum server on `127.0.0.1:0` that answers each
//! `METHOD path` with a scripted sequence of replies and records every request.
//!
//! It is only for what a real Ironic cannot be made to do on demand: answer 409 or 503 a
//! given number of times, hang, answer slowly, send malformed JSON, reset connections, or
//! paginate with `next` links that point elsewhere. Behaviour against Ironic itself is
//! proved by the end-to-end tests.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One scripted answer.
#[derive(Clone, Debug)]
pub enum Reply {
    /// This status with this JSON body.
    Json(u16, Value),
    /// This status with this body, sent as `application/json` whatever it holds.
    Raw(u16, String),
    /// This status and no body (202, 204).
    Empty(u16),
    /// Never answer; the connection stays open.
    Hang,
    /// Wait, then give the inner reply.
    Slow(Duration, Box<Reply>),
}

/// Ironic's error answer: `{"error_message": "<JSON string with faultstring>"}`.
pub fn ironic_error(status: u16, faultstring: &str) -> Reply {
    let inner = json!({"faultcode": "Client", "faultstring": faultstring, "debuginfo": null});
    Reply::Json(status, json!({"error_message": inner.to_string()}))
}

/// A request the fake received.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// `GET`, `PUT`, ...
    pub method: String,
    /// The path, e.g. `/v1/nodes/<uuid>`.
    pub path: String,
    /// The query string, if any.
    pub query: Option<String>,
    /// Every header.
    pub headers: HeaderMap,
    /// The body.
    pub body: Vec<u8>,
}

impl Recorded {
    /// A header's value as text (empty when absent).
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("request body is not JSON")
    }
}

#[derive(Default)]
struct Script {
    /// Replies per `METHOD path`; the last one repeats.
    routes: HashMap<(String, String), VecDeque<Reply>>,
    requests: Vec<Recorded>,
}

#[derive(Default)]
struct Shared {
    script: Mutex<Script>,
    in_flight: AtomicUsize,
    peak_in_flight: AtomicUsize,
    /// Connections still to be reset as soon as they are accepted.
    resets: AtomicUsize,
    /// Connections reset so far.
    reset_count: AtomicUsize,
}

/// The running fake. Dropping it stops the server.
pub struct FakeIronic {
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub url: String,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl Drop for FakeIronic {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeIronic {
    /// Binds `127.0.0.1:0` and serves. The listener is bound before this returns, so no
    /// wait is needed before the first request.
    pub async fn start() -> FakeIronic {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .fallback(answer)
            .with_state(Arc::clone(&shared));
        let listener = ResettingListener {
            inner: listener,
            shared: Arc::clone(&shared),
        };
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeIronic {
            url: format!("http://127.0.0.1:{port}"),
            shared,
            server,
        }
    }

    /// Answers `method path` with `replies` in order; the last one repeats.
    pub fn on(&self, method: &str, path: &str, replies: impl IntoIterator<Item = Reply>) {
        let replies: VecDeque<Reply> = replies.into_iter().collect();
        assert!(!replies.is_empty(), "at least one reply");
        self.shared
            .script
            .lock()
            .unwrap()
            .routes
            .insert((method.to_string(), path.to_string()), replies);
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.script.lock().unwrap().requests.clone()
    }

    /// The most requests that were being answered at once.
    pub fn peak_in_flight(&self) -> usize {
        self.shared.peak_in_flight.load(Ordering::SeqCst)
    }

    /// Resets (TCP RST) the next `n` connections as soon as they are accepted.
    pub fn reset_next_connections(&self, n: usize) {
        self.shared.resets.store(n, Ordering::SeqCst);
    }

    /// Connections reset so far.
    pub fn reset_count(&self) -> usize {
        self.shared.reset_count.load(Ordering::SeqCst)
    }
}

/// Decrements the in-flight count when a request's handling ends, including when a hanging
/// handler is dropped because its connection closed.
struct InFlight(Arc<Shared>);

impl InFlight {
    fn enter(shared: &Arc<Shared>) -> InFlight {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.peak_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(Arc::clone(shared))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn answer(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let _in_flight = InFlight::enter(&shared);
    let reply = {
        let mut script = shared.script.lock().unwrap();
        script.requests.push(Recorded {
            method: method.to_string(),
            path: uri.path().to_string(),
            query: uri.query().map(str::to_string),
            headers,
            body: body.to_vec(),
        });
        let key = (method.to_string(), uri.path().to_string());
        match script.routes.get_mut(&key) {
            Some(replies) if replies.len() > 1 => replies.pop_front(),
            Some(replies) => replies.front().cloned(),
            None => None,
        }
    };
    let reply = reply.unwrap_or_else(|| {
        ironic_error(
            404,
            &format!("fake Ironic: no reply scripted for {method} {}", uri.path()),
        )
    });
    render(reply).await
}

async fn render(mut reply: Reply) -> Response {
    loop {
        match reply {
            Reply::Slow(delay, inner) => {
                tokio::time::sleep(delay).await;
                reply = *inner;
            }
            Reply::Hang => return std::future::pending::<Response>().await,
            Reply::Json(status, body) => {
                return (status_code(status), axum::Json(body)).into_response();
            }
            Reply::Raw(status, body) => {
                return (
                    status_code(status),
                    [(header::CONTENT_TYPE, "application/json")],
                    body,
                )
                    .into_response();
            }
            Reply::Empty(status) => return status_code(status).into_response(),
        }
    }
}

fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap()
}

/// A listener that resets the connections it was told to, then serves normally.
struct ResettingListener {
    inner: TcpListener,
    shared: Arc<Shared>,
}

impl axum::serve::Listener for ResettingListener {
    type Io = TcpStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, addr)) = self.inner.accept().await else {
                continue;
            };
            let reset = self
                .shared
                .resets
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if reset {
                // Zero linger: closing sends RST, like a server whose backlog is full.
                let _ = stream.set_zero_linger();
                drop(stream);
                self.shared.reset_count.fetch_add(1, Ordering::SeqCst);
                continue;
            }
            return (stream, addr);
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A node document as Ironic 1.6 shows it.
pub fn node_json(uuid: &str) -> Value {
    json!({
        "uuid": uuid,
        "driver": "fake-hardware",
        "driver_info": {"ipmi_address": "192.0.2.1", "ipmi_password": "******"},
        "provision_state": "manageable",
        "maintenance": false,
        "properties": {},
        "extra": {},
        "power_state": "power off",
        "links": [],
    })
}

/// Scripts what processing a report asks of Ironic about `node` (a [`node_json`]): the node,
/// its ports (none yet), the creation of a port for `mac`, the PATCH and the power-off.
#[allow(dead_code)] // not every test binary that includes this file uses it
pub fn script_processing(fake: &FakeIronic, node: Value, mac: &str) {
    let uuid = node["uuid"]
        .as_str()
        .expect("node_json has a uuid")
        .to_string();
    let path = format!("/v1/nodes/{uuid}");
    fake.on("GET", &path, [Reply::Json(200, node.clone())]);
    fake.on(
        "GET",
        &format!("{path}/ports/detail"),
        [Reply::Json(200, json!({"ports": []}))],
    );
    let port = json!({"uuid": "p1", "address": mac, "node_uuid": uuid, "extra": {}});
    fake.on("POST", "/v1/ports", [Reply::Json(201, port)]);
    fake.on("PATCH", &path, [Reply::Json(200, node)]);
    fake.on("PUT", &format!("{path}/states/power"), [Reply::Empty(202)]);
}

/// A port document as the detailed list shows it.
pub fn port_json(uuid: &str, node_uuid: &str, address: &str) -> Value {
    json!({"uuid": uuid, "node_uuid": node_uuid, "address": address, "extra": {}, "links": []})
}

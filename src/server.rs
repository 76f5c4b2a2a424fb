//! The HTTP/1.1 server under the API: accepting connections, TLS, the connection limit, the
//! client timeouts, and closing connections in order.
//!
//! Upstream ran its Flask application on Werkzeug's development server, one connection at a
//! time and with no timeouts. Here every phase of a connection has a bound, so that slow,
//! idle or numerous clients cannot starve the daemon:
//!
//! - the TLS handshake: `[DEFAULT] tls_handshake_timeout`;
//! - a request head: `client_header_timeout`, from the moment the client connected (after
//!   TLS) or, on a kept-alive connection, from the first byte of its next request;
//! - the wait for a next request on a kept-alive connection: `keepalive_timeout`;
//! - a request body: `client_body_timeout`, kept by the API layer (`api::body::guard`),
//!   which is the one that knows when a body is read;
//! - connections at once: `max_connections`. At the limit, the connections that sit
//!   between requests are closed to make room, kept-alive ones first, longest waiting first.
//!   When none does, the accept loop waits, and new clients wait in the kernel's listen
//!   backlog until a connection ends (each of the others ends by its own bound). A request in
//!   progress is never cut for a newcomer.
//!
//! The head and idle deadlines are kept by `Clocked`, a wrapper around the socket that fails
//! a read still waiting past the deadline of the connection's current `Phase`; the service
//! moves the phase when a request starts and when its answer has been sent.
//!
//! When a connection ends while its client may still be sending (a body the API chose not to
//! read, see `api::body::guard`), the server first half-closes and reads what still arrives
//! while it keeps coming ([`LINGER`]) before closing: closing a socket with unread input makes
//! the kernel send a reset, and the client may then lose the answer it was about to read.
//!
//! Only HTTP/1.1 (and 1.0) is spoken: the API's clients (the ramdisk, Ironic, the command
//! line client) speak it, as upstream did; over TLS, ALPN offers `http/1.1` only.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;
use tracing::Instrument;

use crate::config::DefaultSection;

/// How long, at most, a connection that ends with input still arriving is read (and the
/// input dropped) after its last answer, so that the client can read that answer.
pub const LINGER: Duration = Duration::from_secs(30);

/// Within [`LINGER`], how long a pause in that input ends the reading.
pub const LINGER_PAUSE: Duration = Duration::from_secs(5);

/// How long the accept loop pauses after an error that is not about one connection (e.g. no
/// file descriptors left), so that it does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The bounds on client connections, from `[DEFAULT]`.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Most connections served at once.
    pub max_connections: usize,
    /// Time to send a request head.
    pub header_timeout: Duration,
    /// Time a kept-alive connection may wait for its next request; `None`: one request per
    /// connection.
    pub keepalive_timeout: Option<Duration>,
    /// Time to complete the TLS handshake.
    pub tls_handshake_timeout: Duration,
}

impl Limits {
    /// The limits an operator configured.
    pub fn from_config(default: &DefaultSection) -> Limits {
        Limits {
            max_connections: default.max_connections,
            header_timeout: default.client_header_timeout,
            keepalive_timeout: default.keepalive_timeout,
            tls_handshake_timeout: default.tls_handshake_timeout,
        }
    }
}

/// The certificate and key the API is served with over HTTPS.
#[derive(Clone)]
pub struct Tls(TlsAcceptor);

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls")
    }
}

impl Tls {
    /// Loads a PEM certificate chain and its private key.
    pub fn from_pem_files(cert: &str, key: &str) -> anyhow::Result<Tls> {
        // Both rustls users (this server and reqwest) agree on the ring provider; installing
        // it twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let chain = CertificateDer::pem_file_iter(cert)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .with_context(|| format!("cannot read certificates from {cert}"))?;
        if chain.is_empty() {
            anyhow::bail!("no certificate in {cert}");
        }
        let key = PrivateKeyDer::from_pem_file(key)
            .with_context(|| format!("cannot read a private key from {key}"))?;
        let mut config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .context("the certificate and key do not make a usable pair")?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls(TlsAcceptor::from(Arc::new(config))))
    }
}

/// Serves `app` on `listener` until `shutdown` is cancelled; then stops accepting, lets each
/// connection finish its current request (at most `grace`, after which the rest are cut) and
/// returns.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Tls>,
    app: Router,
    limits: Limits,
    shutdown: CancellationToken,
    grace: Duration,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let open = Arc::new(Open::default());
    let tasks = TaskTracker::new();
    let cut = CancellationToken::new();
    let mut saturated = false;
    'accept: loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) if is_about_one_connection(&err) => continue,
            Err(err) => {
                tracing::warn!(error = %err, "cannot accept a client connection; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                }
            }
        };
        let permit = match slots.clone().try_acquire_owned() {
            Ok(permit) => {
                saturated = false;
                permit
            }
            Err(_) => {
                if !saturated {
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "connection limit reached ([DEFAULT] max_connections): closing \
                         connections that wait between requests; new ones wait for a free slot"
                    );
                    saturated = true;
                }
                loop {
                    // Registered before looking, so that a connection going idle right after
                    // the look is not missed.
                    let went_idle = open.went_idle.notified();
                    tokio::pin!(went_idle);
                    went_idle.as_mut().enable();
                    open.shed_longest_waiting();
                    tokio::select! {
                        _ = shutdown.cancelled() => break 'accept,
                        permit = slots.clone().acquire_owned() => match permit {
                            Ok(permit) => break permit,
                            Err(_) => break 'accept,
                        },
                        _ = went_idle => {}
                    }
                }
            }
        };
        let activity = open.register(limits, shutdown.child_token());
        let connection = Connection {
            app: app.clone(),
            limits,
            activity,
            open: open.clone(),
            _permit: permit,
        };
        let span = tracing::debug_span!("connection", client.address = %peer);
        let tls = tls.clone();
        let cut = cut.clone();
        tasks.spawn(
            async move {
                tokio::select! {
                    _ = connection.run(stream, tls) => {}
                    _ = cut.cancelled() => tracing::debug!("connection cut at shutdown"),
                }
            }
            .instrument(span),
        );
    }
    drop(listener);
    // Every connection's stop token is a child of `shutdown`: idle connections close now,
    // busy ones after their current answer.
    tasks.close();
    if tokio::time::timeout(grace, tasks.wait()).await.is_err() {
        tracing::warn!("client connections still open at shutdown were cut");
        cut.cancel();
        tasks.wait().await;
    }
}

/// Accept errors that concern the one connection being accepted, not the listener.
fn is_about_one_connection(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    )
}

/// The connections being served, for the limit.
#[derive(Default)]
struct Open {
    connections: Mutex<HashMap<u64, Arc<Activity>>>,
    next_id: AtomicU64,
    /// Told whenever a connection starts waiting for a next request.
    went_idle: Arc<Notify>,
}

impl Open {
    fn connections(&self) -> MutexGuard<'_, HashMap<u64, Arc<Activity>>> {
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn register(&self, limits: Limits, stop: CancellationToken) -> Arc<Activity> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity {
            id,
            limits,
            stop,
            went_idle: self.went_idle.clone(),
            track: Mutex::new(Track {
                phase: Phase::Handshake,
                body_pending: false,
                timed_out: false,
                reader: None,
            }),
        });
        self.connections().insert(id, activity.clone());
        activity
    }

    fn remove(&self, id: u64) {
        self.connections().remove(&id);
    }

    /// Asks the connection that has waited longest between requests to close (kept-alive
    /// connections before fresh ones that have not sent anything yet).
    fn shed_longest_waiting(&self) {
        let connections = self.connections();
        let victim = connections
            .values()
            .filter(|a| !a.stop.is_cancelled())
            .filter_map(|a| a.waiting_since().map(|key| (key, a)))
            .min_by_key(|(key, _)| *key);
        if let Some((_, activity)) = victim {
            tracing::debug!(
                connection = activity.id,
                "closing a waiting connection to make room"
            );
            activity.stop.cancel();
        }
    }
}

/// Where a connection stands; decides the deadline of its reads.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// The TLS handshake (bounded by its own timeout).
    Handshake,
    /// Waiting for the first byte of a request. `kept_alive` once a request was answered.
    Waiting {
        since: Instant,
        deadline: Instant,
        kept_alive: bool,
    },
    /// Reading a request head.
    Head { deadline: Instant },
    /// A request is being served; its body is the API layer's to bound.
    Busy,
    /// Being closed.
    Closing,
}

/// What the socket wrapper, the service and the limit share about one connection.
struct Activity {
    id: u64,
    limits: Limits,
    /// Cancelled to ask the connection to finish its current request and close.
    stop: CancellationToken,
    went_idle: Arc<Notify>,
    track: Mutex<Track>,
}

struct Track {
    phase: Phase,
    /// The last request's body had not been read to its end.
    body_pending: bool,
    /// A read deadline passed.
    timed_out: bool,
    /// The task waiting on a read, woken when the phase (and so the deadline) changes.
    reader: Option<Waker>,
}

impl Activity {
    fn track(&self) -> MutexGuard<'_, Track> {
        self.track.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set_phase(&self, phase: Phase) {
        let mut track = self.track();
        track.phase = phase;
        if let Some(reader) = track.reader.take() {
            reader.wake();
        }
    }

    /// The connection is ready for its first request.
    fn ready(&self) {
        let now = Instant::now();
        self.set_phase(Phase::Waiting {
            since: now,
            deadline: now + self.limits.header_timeout,
            kept_alive: false,
        });
    }

    /// Bytes arrived from the client.
    fn received(&self) {
        let mut track = self.track();
        if let Phase::Waiting {
            deadline,
            kept_alive,
            ..
        } = track.phase
        {
            // A first request's head counts from the connection's start; a next one from its
            // first byte.
            let deadline = if kept_alive {
                Instant::now() + self.limits.header_timeout
            } else {
                deadline
            };
            track.phase = Phase::Head { deadline };
        }
    }

    /// A request head was read and handed to the application.
    fn request_started(&self, body_pending: bool) {
        let mut track = self.track();
        track.phase = Phase::Busy;
        track.body_pending = body_pending;
    }

    fn body_finished(&self) {
        self.track().body_pending = false;
    }

    /// The answer was handed to the connection in full.
    fn answered(&self) {
        let Some(idle) = self.limits.keepalive_timeout else {
            self.set_phase(Phase::Closing);
            return;
        };
        let now = Instant::now();
        self.set_phase(Phase::Waiting {
            since: now,
            deadline: now + idle,
            kept_alive: true,
        });
        self.went_idle.notify_waiters();
    }

    /// The order in which waiting connections are shed, or `None` if this one is not waiting.
    fn waiting_since(&self) -> Option<(bool, Instant)> {
        match self.track().phase {
            Phase::Waiting {
                since, kept_alive, ..
            } => Some((!kept_alive, since)),
            _ => None,
        }
    }

    /// The deadline of a read that has to wait, remembering who waits.
    fn read_deadline(&self, waker: &Waker) -> Option<Instant> {
        let mut track = self.track();
        match &track.reader {
            Some(reader) if reader.will_wake(waker) => {}
            _ => track.reader = Some(waker.clone()),
        }
        match track.phase {
            Phase::Waiting { deadline, .. } | Phase::Head { deadline } => Some(deadline),
            Phase::Handshake | Phase::Busy | Phase::Closing => None,
        }
    }
}

/// One client connection.
struct Connection {
    app: Router,
    limits: Limits,
    activity: Arc<Activity>,
    open: Arc<Open>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.open.remove(self.activity.id);
    }
}

impl Connection {
    async fn run(self, stream: TcpStream, tls: Option<Tls>) {
        // Answers are written whole; there is nothing to gain from Nagle's delay.
        let _ = stream.set_nodelay(true);
        let io = Clocked::new(stream, self.activity.clone());
        let Some(Tls(acceptor)) = tls else {
            self.activity.ready();
            return self.serve(io).await;
        };
        let handshake = tokio::select! {
            _ = self.activity.stop.cancelled() => return,
            done = tokio::time::timeout(self.limits.tls_handshake_timeout, acceptor.accept(io)) => done,
        };
        match handshake {
            Ok(Ok(io)) => {
                self.activity.ready();
                self.serve(io).await;
            }
            Ok(Err(err)) => tracing::debug!(error = %err, "TLS handshake failed"),
            Err(_) => tracing::debug!("TLS handshake timed out"),
        }
    }

    async fn serve<I>(&self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let activity = self.activity.clone();
        let app = self.app.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let activity = activity.clone();
            activity.request_started(!request.body().is_end_stream());
            let request = request.map(|body| RequestBody {
                body,
                activity: activity.clone(),
            });
            let answer = app.clone().oneshot(request);
            Box::pin(async move {
                let response = answer
                    .await
                    .unwrap_or_else(|never: Infallible| match never {});
                Ok::<_, Infallible>(response.map(|body| {
                    Body::new(ResponseBody {
                        body,
                        activity: Some(activity),
                    })
                }))
            }) as Pin<Box<dyn Future<Output = Result<_, Infallible>> + Send>>
        });
        let mut builder = http1::Builder::new();
        builder
            .keep_alive(self.limits.keepalive_timeout.is_some())
            // Our own deadlines (see `Clocked`) replace hyper's header timer.
            .header_read_timeout(None);
        let mut connection = builder.serve_connection(TokioIo::new(io), service);
        let mut stopping = false;
        let ended = loop {
            tokio::select! {
                ended = std::future::poll_fn(|cx| connection.poll_without_shutdown(cx)) => break ended,
                _ = self.activity.stop.cancelled(), if !stopping => {
                    stopping = true;
                    Pin::new(&mut connection).graceful_shutdown();
                }
            }
        };
        let (timed_out, input_pending) = {
            let track = self.activity.track();
            let head_pending = matches!(track.phase, Phase::Head { .. });
            (track.timed_out, track.body_pending || head_pending)
        };
        match &ended {
            Err(_) if timed_out => tracing::debug!("client too slow; connection closed"),
            Err(err) => tracing::debug!(error = %err, "connection ended with an error"),
            Ok(()) => {}
        }
        self.activity.set_phase(Phase::Closing);
        let io = connection.into_parts().io.into_inner();
        close(io, input_pending && !timed_out).await;
    }
}

/// Closes a connection in order: the client gets the end of the stream (and for TLS a
/// close_notify) after everything written; with `linger`, what it still sends is read and
/// dropped while it keeps coming (see [`LINGER`], [`LINGER_PAUSE`]) so that the close does not
/// turn into a reset.
async fn close<I: AsyncRead + AsyncWrite + Unpin>(mut io: I, linger: bool) {
    let _ = tokio::time::timeout(LINGER, async {
        if io.shutdown().await.is_err() || !linger {
            return;
        }
        let mut sink = vec![0u8; 16 * 1024];
        while let Ok(Ok(read)) = tokio::time::timeout(LINGER_PAUSE, io.read(&mut sink)).await {
            if read == 0 {
                break;
            }
        }
    })
    .await;
}

/// The client's socket, failing a read that waits past the deadline of the connection's
/// phase (see `Phase`).
struct Clocked {
    stream: TcpStream,
    activity: Arc<Activity>,
    timer: Pin<Box<Sleep>>,
    armed_for: Option<Instant>,
}

impl Clocked {
    fn new(stream: TcpStream, activity: Arc<Activity>) -> Clocked {
        Clocked {
            stream,
            activity,
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
            armed_for: None,
        }
    }
}

impl AsyncRead for Clocked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.activity.received();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => {
                let Some(deadline) = this.activity.read_deadline(cx.waker()) else {
                    return Poll::Pending;
                };
                if this.armed_for != Some(deadline) {
                    this.timer.as_mut().reset(deadline);
                    this.armed_for = Some(deadline);
                }
                if this.timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.activity.track().timed_out = true;
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client did not send a request in time",
                )))
            }
        }
    }
}

impl AsyncWrite for Clocked {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// A request body that tells its connection when it has been read to the end.
struct RequestBody {
    body: Incoming,
    activity: Arc<Activity>,
}

impl HttpBody for RequestBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            this.activity.body_finished();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// An answer's body that tells its connection when it has been handed over (dropped).
struct ResponseBody {
    body: Body,
    activity: Option<Arc<Activity>>,
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        if let Some(activity) = self.activity.take() {
            activity.answered();
        }
    }
}

impl HttpBody for ResponseBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

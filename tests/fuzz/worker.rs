//! One connection's worker: sends its generator's requests on a connection of its own,
//! checks each answer (see [`Stats::answered`]) and tells a dropped connection from one the
//! server announced it would close, blaming the right request.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::generate::{self, Generator, Request};
use crate::stats::{self, Stats};
use crate::wire::{Connection, Failure, Outcome, WireRequest};

/// An answer slower than this counts as none. Generous: a report goes through several
/// Ironic calls, each retried while Ironic has the node locked, one PATCH per action of
/// every rule that applies, and may first wait for another request on the same node.
pub const ANSWER_DEADLINE: Duration = Duration::from_secs(180);

/// One connection's worker: its generator, its connection, and the last answered request
/// (to blame when the server turns out to have closed the connection after it).
pub struct Worker {
    pub generator: Generator,
    connection: Option<Connection>,
    port: u16,
    last_answered: Option<(String, Request)>,
    pub stats: Stats,
}

impl Worker {
    pub fn new(generator: Generator, port: u16) -> Worker {
        Worker {
            generator,
            connection: None,
            port,
            last_answered: None,
            stats: Stats::default(),
        }
    }

    pub async fn send(&mut self, request: Request) {
        let mut reused = false;
        if let Some(connection) = &mut self.connection {
            if connection.closed_by_peer() {
                // Closed after its last answer, which did not say so.
                self.blame_last(
                    "closed after an answer without Connection: close",
                    "found idle-closed before the next request",
                );
                self.connection = None;
            } else {
                reused = connection.answered > 0;
            }
        }
        if self.connection.is_none() {
            match Connection::open(self.port).await {
                Ok(connection) => {
                    self.stats.connections += 1;
                    self.connection = Some(connection);
                }
                Err(e) => {
                    self.stats.drop(
                        "connection refused",
                        request.shape(),
                        &request,
                        &e.to_string(),
                    );
                    self.generator.observe(&request, None);
                    return;
                }
            }
        }
        self.stats.sent(&request, reused);
        let Some(connection) = &mut self.connection else {
            return;
        };
        let sent_at = Instant::now();
        let sent_wall = std::time::SystemTime::now();
        let outcome = connection.exchange(&request.wire, ANSWER_DEADLINE).await;
        let status = match &outcome {
            Outcome::Answered { response, .. } => Some(response.status),
            Outcome::Failed { .. } => None,
        };
        self.stats
            .timed(&request, sent_wall, sent_at.elapsed(), status);
        match outcome {
            Outcome::Answered {
                response,
                send_error,
            } => {
                self.stats.answered(&request, &response);
                let answer = stats::answer_summary(&response);
                let announced = response.announces_close() || request.wire.client_close;
                if let Some(kind) = send_error
                    && !announced
                {
                    self.stats.drop(
                        "stopped reading the request body without Connection: close",
                        format!("{} -> {answer}", request.shape()),
                        &request,
                        &format!(
                            "sending the rest failed: {kind:?}; answer {}",
                            response.status
                        ),
                    );
                }
                self.generator.observe(&request, Some(&response));
                if announced || send_error.is_some() {
                    if response.announces_close() {
                        self.stats.announced_closes += 1;
                    }
                    self.connection = None;
                    self.last_answered = None;
                } else {
                    let shape = format!("{} -> {answer}", request.shape());
                    self.last_answered = Some((shape, request));
                }
            }
            Outcome::Failed {
                failure,
                bytes_read,
            } => {
                self.generator.observe(&request, None);
                self.connection = None;
                let detail = format!("{failure} after {bytes_read} bytes of the answer");
                if request.wire.half_close && matches!(failure, Failure::Closed | Failure::Reset) {
                    // We cut the request short and shut our side: no answer is due.
                    self.stats.truncated_closed += 1;
                } else if request.malformed_http
                    && matches!(failure, Failure::Closed | Failure::Reset)
                    && bytes_read == 0
                {
                    *self.stats.http_refusals.entry(0).or_default() += 1;
                    self.stats.note(
                        "(no failure) malformed request closed without an answer",
                        &request,
                        &detail,
                    );
                } else if reused
                    && bytes_read == 0
                    && matches!(failure, Failure::Closed | Failure::Reset)
                {
                    // Nothing came back on a connection that had answered before: it was
                    // closed after that answer.
                    let current = request.shape();
                    self.blame_last(
                        "closed after an answer without Connection: close",
                        &format!("noticed while sending: {current}: {detail}"),
                    );
                } else {
                    let cause = match failure {
                        Failure::Timeout => "no answer within the deadline",
                        Failure::Malformed => "malformed answer",
                        _ if bytes_read > 0 => "answer cut short",
                        _ => "closed or reset before answering",
                    };
                    self.stats.drop(cause, request.shape(), &request, &detail);
                }
                self.last_answered = None;
            }
        }
    }

    fn blame_last(&mut self, cause: &'static str, detail: &str) {
        match self.last_answered.take() {
            Some((shape, request)) => self.stats.drop(cause, shape, &request, detail),
            None => {
                let request = Request {
                    wire: WireRequest::default(),
                    route: generate::Route::Unknown,
                    method: String::new(),
                    body_kind: "none",
                    body_len: 0,
                    framing: "none",
                    malformed_http: false,
                    flow: None,
                };
                self.stats.drop(
                    cause,
                    "(unknown earlier request)".to_string(),
                    &request,
                    detail,
                )
            }
        }
    }

    /// One last `GET /` on the open connection: it must still be served.
    pub async fn probe(&mut self) {
        if self.connection.is_none() {
            return;
        }
        let wire = WireRequest {
            head: format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n", self.port).into_bytes(),
            ..WireRequest::default()
        };
        let Some(connection) = &mut self.connection else {
            return;
        };
        let closed = connection.closed_by_peer();
        let outcome = if closed {
            None
        } else {
            Some(connection.exchange(&wire, ANSWER_DEADLINE).await)
        };
        match outcome {
            Some(Outcome::Answered { response, .. }) if response.status == 200 => {}
            other => {
                let detail = format!("the final GET / on the connection: {other:?}");
                self.blame_last("closed after an answer without Connection: close", &detail);
            }
        }
        self.connection = None;
    }
}

/// The workers back from their tasks, in the order they were spawned (each task returns its
/// index with its worker).
async fn in_order(mut set: tokio::task::JoinSet<(usize, Worker)>) -> Vec<Worker> {
    let mut done: Vec<(usize, Worker)> = Vec::new();
    while let Some(joined) = set.join_next().await {
        done.push(joined.expect("a fuzz worker panicked"));
    }
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, w)| w).collect()
}

/// The end of the warm-up: every connection sends its generator's heaviest requests, all
/// at once.
pub async fn heavy(workers: Vec<Worker>) -> Vec<Worker> {
    let mut set = tokio::task::JoinSet::new();
    for (index, mut worker) in workers.into_iter().enumerate() {
        set.spawn(async move {
            for request in worker.generator.heavy_requests() {
                worker.send(request).await;
            }
            (index, worker)
        });
    }
    in_order(set).await
}

/// Runs workers until `limit` requests have been taken from `tickets`.
pub async fn phase(workers: Vec<Worker>, tickets: &Arc<AtomicUsize>, limit: usize) -> Vec<Worker> {
    let mut set = tokio::task::JoinSet::new();
    for (index, mut worker) in workers.into_iter().enumerate() {
        let tickets = tickets.clone();
        set.spawn(async move {
            while tickets.fetch_add(1, Ordering::SeqCst) < limit {
                let request = worker.generator.next_request();
                worker.send(request).await;
            }
            tickets.fetch_sub(1, Ordering::SeqCst);
            (index, worker)
        });
    }
    in_order(set).await
}

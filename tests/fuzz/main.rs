//! An HTTP fuzzer against the running daemon.
//!
//! Starts the real `ironic-inspector` binary (noauth, no firewall, SQLite migrated by
//! `ironic-inspector-dbsync`, store_data = database) against the real Ironic named by
//! `INSPECTOR_TEST_IRONIC_URL`, enrolls a few nodes there, and sends structure-aware requests
//! on a few keep-alive connections at once, written by hand so that no client library hides
//! a reconnect: every route and method, valid and mutated ramdisk reports and rules, random
//! and oversized bodies, odd headers and framing (see `generate.rs`).
//!
//! The bar, checked after every run and printed with a summary:
//! - no answer >= 500 (a 503 naming an outage of a service we depend on is counted apart);
//! - no dropped connection: a connection the server closed or reset without announcing it
//!   with `Connection: close` on its last answer, a request that got no answer, or a body
//!   the server stopped reading without saying so;
//! - every error answer is `{"error": {"message": ...}}` and carries the version headers;
//! - no panic in the daemon's log, and the daemon alive at the end (then stopped by SIGTERM,
//!   with status 0);
//! - its RSS at the end within 20% of what it was after the warm-up;
//! - the node cache and rules tables consistent (see `tables.rs`).
//!
//! `INSPECTOR_FUZZ_REQUESTS` (default 5,000, the CI smoke) sets the number of requests,
//! `INSPECTOR_FUZZ_SEED` (decimal or 0x-hex) replays a run: each connection's requests follow
//! from the seed (answers, such as which rules exist, can still differ with timing).
//! Without Ironic the run prints a skip line, unless `CI` is set, where it fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod daemon;
mod generate;
#[path = "../e2e/ironic_api.rs"]
mod ironic_api;
mod mutate;
mod rng;
mod stats;
mod tables;
mod wire;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::daemon::Daemon;
use crate::generate::{FIXTURE_FILES, Generator, RealNode, Request, World};
use crate::ironic_api::{IronicApi, unique_macs};
use crate::stats::Stats;
use crate::wire::{Connection, Failure, Outcome, WireRequest};

/// The run's name, as a test filter matches it.
const NAME: &str = "http_fuzz";
/// Requests of the CI smoke, when `INSPECTOR_FUZZ_REQUESTS` is not set.
const DEFAULT_REQUESTS: usize = 5_000;
/// Fuzzing connections used at once.
const FUZZ_CONNECTIONS: usize = 4;
/// Connections that walk the enrolled nodes through introspection meanwhile, and the nodes
/// each walks (the last node of each is left in `enroll`, where new IPMI credentials may be
/// asked for; the others are manageable).
const FLOW_CONNECTIONS: usize = 2;
const NODES_PER_FLOW: usize = 2;
/// Connections at once.
const CONNECTIONS: usize = FUZZ_CONNECTIONS + FLOW_CONNECTIONS;
/// The share of requests sent before the reference RSS is taken.
const WARM_UP_SHARE: usize = 5;
/// An answer slower than this counts as none. Generous: a report goes through several
/// Ironic calls, each retried while Ironic has the node locked.
const ANSWER_DEADLINE: Duration = Duration::from_secs(60);
/// The daemon's `max_request_body_size` for the run: small, so that 413 is reached with
/// bodies that are cheap to send.
const BODY_LIMIT: usize = 256 * 1024;
/// After the warm-up, the run is cut in this many steps, the RSS read after each.
const RSS_STEPS: usize = 8;
/// How much the RSS may grow after the warm-up.
const RSS_TOLERANCE: f64 = 0.20;
/// Drop shapes shown per cause (`INSPECTOR_FUZZ_SHAPES` shows more).
const SHAPES_SHOWN_DEFAULT: usize = 25;
/// How long the end of the run waits for the nodes' introspections to be stopped.
const SETTLE_DEADLINE: Duration = Duration::from_secs(120);

fn main() -> ExitCode {
    // Behave like a test binary for `cargo test`: answer --list, honour a name filter.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        println!("{NAME}: test");
        return ExitCode::SUCCESS;
    }
    let mut filters = Vec::new();
    let mut skip_value = false;
    for arg in &args {
        if skip_value {
            skip_value = false;
        } else if arg.starts_with('-') {
            skip_value = !arg.contains('=')
                && matches!(
                    arg.as_str(),
                    "--test-threads" | "--skip" | "--color" | "--format" | "--logfile" | "-Z"
                );
        } else {
            filters.push(arg.as_str());
        }
    }
    let exact = args.iter().any(|a| a == "--exact");
    if !filters.is_empty()
        && !filters
            .iter()
            .any(|f| if exact { *f == NAME } else { NAME.contains(f) })
    {
        println!("running 0 tests ({NAME} filtered out)");
        return ExitCode::SUCCESS;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("building the tokio runtime");
    runtime.block_on(run())
}

/// One connection's worker: its generator, its connection, and the last answered request
/// (to blame when the server turns out to have closed the connection after it).
struct Worker {
    generator: Generator,
    connection: Option<Connection>,
    port: u16,
    last_answered: Option<(String, Request)>,
    stats: Stats,
}

impl Worker {
    async fn send(&mut self, request: Request) {
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
        let outcome = connection.exchange(&request.wire, ANSWER_DEADLINE).await;
        let status = match &outcome {
            Outcome::Answered { response, .. } => Some(response.status),
            Outcome::Failed { .. } => None,
        };
        self.stats.timed(&request, sent_at.elapsed(), status);
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
    async fn probe(&mut self) {
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

/// The end of the warm-up: every connection sends its generator's heaviest requests, all
/// at once.
async fn heavy(workers: Vec<Worker>) -> Vec<Worker> {
    let mut set = tokio::task::JoinSet::new();
    for (index, mut worker) in workers.into_iter().enumerate() {
        set.spawn(async move {
            for request in worker.generator.heavy_requests() {
                worker.send(request).await;
            }
            (index, worker)
        });
    }
    let mut done: Vec<(usize, Worker)> = Vec::new();
    while let Some(joined) = set.join_next().await {
        done.push(joined.expect("a fuzz worker panicked"));
    }
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, w)| w).collect()
}

/// Runs workers until `limit` requests have been taken from `tickets`.
async fn phase(workers: Vec<Worker>, tickets: &Arc<AtomicUsize>, limit: usize) -> Vec<Worker> {
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
    let mut done: Vec<(usize, Worker)> = Vec::new();
    while let Some(joined) = set.join_next().await {
        done.push(joined.expect("a fuzz worker panicked"));
    }
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, w)| w).collect()
}

fn env_number(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok().filter(|v| !v.trim().is_empty())?;
    let text = text.trim();
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.replace('_', "").parse(),
    };
    Some(parsed.unwrap_or_else(|e| panic!("{name}={text}: not a number: {e}")))
}

async fn run() -> ExitCode {
    let seed = env_number("INSPECTOR_FUZZ_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id()).rotate_left(32)
    });
    let total = env_number("INSPECTOR_FUZZ_REQUESTS").map_or(DEFAULT_REQUESTS, |n| n as usize);
    println!(
        "{NAME}: seed {seed:#x} (replay with INSPECTOR_FUZZ_SEED={seed:#x}), {total} requests on {CONNECTIONS} connections at once"
    );
    let Some(ironic) = IronicApi::for_test(NAME) else {
        return ExitCode::SUCCESS;
    };

    // Nodes in the real Ironic.
    let mut nodes = Vec::new();
    for i in 0..FLOW_CONNECTIONS * NODES_PER_FLOW {
        let macs = unique_macs(2);
        let bmc = format!("192.0.2.{}", 101 + i);
        let uuid = ironic
            .enroll(
                json!({"ipmi_address": bmc}),
                &[macs[0].as_str(), macs[1].as_str()],
            )
            .await;
        let enroll = i % NODES_PER_FLOW == NODES_PER_FLOW - 1;
        if !enroll {
            ironic.manage(&uuid).await;
        }
        nodes.push(RealNode {
            uuid,
            macs: [macs[0].clone(), macs[1].clone()],
            bmc,
            enroll,
        });
    }
    let outcome = fuzz(seed, total, &ironic, &nodes).await;
    for node in &nodes {
        ironic.delete_node(&node.uuid).await;
    }
    outcome
}

async fn fuzz(seed: u64, total: usize, ironic: &IronicApi, nodes: &[RealNode]) -> ExitCode {
    let dir = tempfile::tempdir().expect("creating a temporary directory");
    let run_started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let mut daemon = Daemon::start(dir.path(), ironic.url(), BODY_LIMIT).await;
    let fixtures = FIXTURE_FILES
        .iter()
        .map(|name| {
            let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            (*name, text)
        })
        .collect();
    let world = Arc::new(World {
        port: daemon.port,
        nodes: nodes.to_vec(),
        fixtures,
        body_limit: daemon.body_limit,
    });
    let workers: Vec<Worker> = (0..CONNECTIONS)
        .map(|i| Worker {
            generator: Generator::new(
                world.clone(),
                seed ^ (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15),
                match i.checked_sub(FUZZ_CONNECTIONS) {
                    None => Vec::new(),
                    Some(flow) => (flow * NODES_PER_FLOW..(flow + 1) * NODES_PER_FLOW).collect(),
                },
            ),
            connection: None,
            port: daemon.port,
            last_answered: None,
            stats: Stats::default(),
        })
        .collect();

    let started = Instant::now();
    let tickets = Arc::new(AtomicUsize::new(0));
    let warm_up = (total / WARM_UP_SHARE).max(1).min(total);
    let workers = phase(workers, &tickets, warm_up).await;
    let rss_before_heavy = daemon.rss_kib();
    let mut workers = heavy(workers).await;
    let rss_warm = daemon.rss_kib();
    let files_warm = daemon.open_files();
    // The rest in steps, with the RSS after each (for the summary: a leak grows steadily,
    // the allocator's own growth levels off).
    let mut rss_steps = Vec::new();
    for step in 1..=RSS_STEPS {
        let upto = warm_up + (total - warm_up) * step / RSS_STEPS;
        workers = phase(workers, &tickets, upto).await;
        rss_steps.push(daemon.rss_kib());
    }
    for worker in &mut workers {
        worker.probe().await;
    }
    let elapsed = started.elapsed();
    let mut stats = Stats::default();
    for worker in workers {
        stats.merge(worker.stats);
    }

    // Let every node's introspection end (abort waits for the node's lock), then read the
    // memory and the tables.
    let settle = settle(daemon.port, nodes).await;
    let rss_end = daemon.rss_kib();
    let rss_peak = daemon.peak_rss_kib();
    let files_end = daemon.open_files();
    let known: BTreeSet<String> = nodes.iter().map(|n| n.uuid.clone()).collect();
    let api = format!("http://127.0.0.1:{}", daemon.port);
    let (table_problems, counts) = tables::check(&daemon.database, &api, &known, run_started).await;
    let alive = daemon.is_alive();
    let panics = daemon.panics();
    let log_errors = daemon
        .log_text()
        .lines()
        .filter(|l| l.contains(" ERROR "))
        .count();
    let log_path = daemon.log.clone();
    let stopped = if alive {
        daemon.stop().await
    } else {
        Err("it had died".to_string())
    };
    let panics_after_stop = std::fs::read_to_string(&log_path)
        .map(|t| t.lines().filter(|l| l.contains("panicked")).count())
        .unwrap_or(panics.len());

    // The summary.
    #[allow(non_snake_case)]
    let SHAPES_SHOWN =
        env_number("INSPECTOR_FUZZ_SHAPES").map_or(SHAPES_SHOWN_DEFAULT, |n| n as usize);
    let mut out = String::new();
    let secs = elapsed.as_secs_f64();
    let _ = writeln!(out, "\n{NAME} summary (seed {seed:#x})");
    let _ = writeln!(
        out,
        "  requests      {} in {secs:.1} s ({:.0} requests/s); the first {warm_up} and {heavy_count} heavy ones were the warm-up",
        stats.requests,
        stats.requests as f64 / secs.max(0.001),
        heavy_count = stats.heavy
    );
    let _ = writeln!(
        out,
        "  connections   {} opened, {CONNECTIONS} at a time; {} requests on a reused (keep-alive) connection; {} closes announced by Connection: close",
        stats.connections, stats.reused, stats.announced_closes
    );
    let _ = writeln!(out, "  by route and method:");
    let mut route_lines: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    for ((route, method), n) in &stats.by_route {
        route_lines
            .entry(route.name())
            .or_default()
            .push(format!("{} {n}", stats::escape(method.as_bytes(), 12)));
    }
    for (route, methods) in &route_lines {
        let _ = writeln!(out, "    {route:<32} {}", methods.join(", "));
    }
    let statuses: Vec<String> = stats
        .statuses
        .iter()
        .map(|(s, n)| format!("{s}: {n}"))
        .collect();
    let _ = writeln!(out, "  statuses      {}", statuses.join(", "));
    for (what, answers) in [("starts", &stats.starts), ("reports", &stats.reports)] {
        let answers: Vec<String> = answers.iter().map(|(a, n)| format!("{n} x {a}")).collect();
        let _ = writeln!(out, "  node {what:<8} {}", answers.join(", "));
    }
    let refusals: Vec<String> = stats
        .http_refusals
        .iter()
        .map(|(s, n)| {
            if *s == 0 {
                format!("closed without answer: {n}")
            } else {
                format!("{s}: {n}")
            }
        })
        .collect();
    let _ = writeln!(
        out,
        "  not HTTP/1.1  refused by the HTTP layer with Connection: close: {}",
        if refusals.is_empty() {
            "none".to_string()
        } else {
            refusals.join(", ")
        }
    );
    let _ = writeln!(
        out,
        "  truncated     {} answered, {} closed without an answer after we shut our side",
        stats.truncated_answered, stats.truncated_closed
    );
    let _ = writeln!(out, "  time per route (mean, max):");
    for (route, (n, total, max)) in &stats.latency {
        let _ = writeln!(
            out,
            "    {:<32} {:>7.1} ms {:>8.1} ms",
            route.name(),
            total.as_secs_f64() * 1000.0 / (*n).max(1) as f64,
            max.as_secs_f64() * 1000.0
        );
    }
    let _ = writeln!(out, "  slowest requests:");
    for (took, shape) in &stats.slowest {
        let _ = writeln!(out, "    {:>8.1} ms  {shape}", took.as_secs_f64() * 1000.0);
    }
    let _ = writeln!(out, "  drops         {}", stats.drop_count());
    for (cause, shapes) in &stats.drops {
        let _ = writeln!(out, "    {cause}: {}", shapes.values().sum::<usize>());
        let mut shapes: Vec<_> = shapes.iter().collect();
        shapes.sort_by(|a, b| b.1.cmp(a.1));
        for (shape, n) in shapes.iter().take(SHAPES_SHOWN) {
            let _ = writeln!(out, "      {n:>6}  {shape}");
        }
        if shapes.len() > SHAPES_SHOWN {
            let _ = writeln!(out, "      ... {} more shapes", shapes.len() - SHAPES_SHOWN);
        }
    }
    let _ = writeln!(out, "  breaches      {:?}", stats.breaches);
    let _ = writeln!(out, "  503 outages   {:?}", stats.outages);
    let _ = writeln!(
        out,
        "  daemon        {}; panics in its log: {}; ERROR lines: {log_errors}; SIGTERM: {}",
        if alive {
            "alive at the end"
        } else {
            "DEAD at the end"
        },
        panics_after_stop,
        match &stopped {
            Ok(status) => format!("{status}"),
            Err(e) => e.clone(),
        }
    );
    let growth = (rss_end as f64 - rss_warm as f64) / rss_warm.max(1) as f64;
    let _ = writeln!(
        out,
        "  RSS           {:.1} MiB after the warm-up, {:.1} MiB at the end ({:+.1}%, at most {:+.0}%), peak {:.1} MiB",
        rss_warm as f64 / 1024.0,
        rss_end as f64 / 1024.0,
        growth * 100.0,
        RSS_TOLERANCE * 100.0,
        rss_peak as f64 / 1024.0
    );
    let steps: Vec<String> = rss_steps
        .iter()
        .map(|kib| format!("{:.1}", *kib as f64 / 1024.0))
        .collect();
    let _ = writeln!(
        out,
        "  RSS by step   {:.1} before the heavy requests; {} MiB",
        rss_before_heavy as f64 / 1024.0,
        steps.join(", ")
    );
    let _ = writeln!(
        out,
        "  open files    {files_warm} after the warm-up, {files_end} at the end"
    );
    let _ = writeln!(
        out,
        "  tables        {} nodes ({} finished), {} attributes, {} options, {} rules ({} conditions, {} actions): {}",
        counts.nodes,
        counts.finished,
        counts.attributes,
        counts.options,
        counts.rules,
        counts.conditions,
        counts.actions,
        if table_problems.is_empty() {
            "consistent".to_string()
        } else {
            format!("{} problems", table_problems.len())
        }
    );
    for problem in table_problems.iter().take(20) {
        let _ = writeln!(out, "    {problem}");
    }
    if let Err(problem) = &settle {
        let _ = writeln!(out, "  settle        {problem}");
    }
    if !stats.samples.is_empty() {
        let _ = writeln!(out, "  samples (failures, and requests worth a look):");
        for (kind, samples) in &stats.samples {
            let _ = writeln!(out, "    {kind}:");
            for sample in samples {
                let _ = writeln!(out, "      {sample}");
            }
        }
    }

    let mut failed = Vec::new();
    if stats.requests < total {
        failed.push(format!(
            "only {} of {total} requests were sent",
            stats.requests
        ));
    }
    if stats.drop_count() > 0 {
        failed.push(format!("{} dropped connections", stats.drop_count()));
    }
    if !stats.breaches.is_empty() {
        failed.push(format!("answers that break the bar: {:?}", stats.breaches));
    }
    if !alive {
        failed.push("the daemon died".to_string());
    }
    if panics_after_stop > 0 {
        failed.push(format!(
            "{panics_after_stop} panics in the daemon's log, first: {:?}",
            panics.first()
        ));
    }
    if let Err(e) = &stopped {
        failed.push(format!("SIGTERM: {e}"));
    } else if let Ok(status) = &stopped
        && !status.success()
    {
        failed.push(format!("the daemon exited with {status} after SIGTERM"));
    }
    if growth > RSS_TOLERANCE {
        failed.push(format!(
            "RSS grew by {:.1}% after the warm-up",
            growth * 100.0
        ));
    }
    if !table_problems.is_empty() {
        failed.push(format!(
            "{} inconsistencies in the tables",
            table_problems.len()
        ));
    }
    if let Err(problem) = settle {
        failed.push(problem);
    }
    if failed.is_empty() {
        let _ = writeln!(out, "{NAME}: ok");
        println!("{out}");
        ExitCode::SUCCESS
    } else {
        let _ = writeln!(
            out,
            "{NAME}: FAILED (replay with INSPECTOR_FUZZ_SEED={seed:#x} INSPECTOR_FUZZ_REQUESTS={total}; the daemon's log was {}):",
            log_path.display()
        );
        for f in &failed {
            let _ = writeln!(out, "  - {f}");
        }
        println!("{out}");
        // Keep the daemon's log and database for a look.
        let kept = dir.keep();
        println!(
            "{NAME}: kept {} (daemon.log, inspector.sqlite)",
            kept.display()
        );
        ExitCode::FAILURE
    }
}

/// Ends the introspection of every node (abort answers 409 while a request or a background
/// step holds the node), and waits until each one's status says finished.
async fn settle(port: u16, nodes: &[RealNode]) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .timeout(ANSWER_DEADLINE)
        .build()
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + SETTLE_DEADLINE;
    for node in nodes {
        let base = format!("http://127.0.0.1:{port}/v1/introspection/{}", node.uuid);
        loop {
            let abort = client
                .post(format!("{base}/abort"))
                .send()
                .await
                .map_err(|e| format!("POST {base}/abort: {e}"))?;
            let status = client
                .get(&base)
                .send()
                .await
                .map_err(|e| format!("GET {base}: {e}"))?;
            let code = status.status().as_u16();
            let body: serde_json::Value = status.json().await.unwrap_or_default();
            let done = code == 404 || (code == 200 && body["finished"] == true);
            if done && abort.status().as_u16() != 409 {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "node {} still not finished {SETTLE_DEADLINE:?} after the run (abort answered {}, status {code} {body})",
                    node.uuid,
                    abort.status()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

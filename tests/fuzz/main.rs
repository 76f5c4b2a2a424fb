//! An HTTP fuzzer against the running daemon.
//!
//! Starts the real `ironic-inspector` binary (noauth, no firewall, SQLite migrated by
//! `ironic-inspector-dbsync`, store_data = database, a 256 KiB body limit) against the real
//! Ironic named by `INSPECTOR_TEST_IRONIC_URL`, enrolls four nodes there, and sends requests
//! written byte by byte on six keep-alive connections at once, so that no client library
//! hides a reconnect. Four connections fuzz: every route and method, valid and mutated
//! ramdisk reports and rules, random and oversized bodies, odd headers and framing, and now
//! and then a request that is not HTTP/1.1 at all. Two walk the nodes through introspection
//! meanwhile (a start, then the node's report), so that valid requests reach the Ironic
//! calls, hooks, rules and storage while the fuzzing goes on around them.
//!
//! The first fifth of the requests is the warm-up; it ends with the generator's heaviest
//! requests on every connection at once, and the RSS read then is the reference.
//!
//! The bar, checked after every run and printed with a summary:
//! - no answer >= 500 (a 503 naming an outage of a service we depend on is counted apart);
//! - no dropped connection: a connection the server closed or reset without announcing it
//!   with `Connection: close` on its last answer, a request that got no answer, or a body
//!   the server stopped reading without saying so;
//! - every error answer of the API is `{"error": {"message": ...}}` with the version
//!   headers. Requests that are not HTTP/1.1 are answered by the HTTP layer before the API
//!   sees them: those must be a 4xx that closes the connection (or a close);
//! - no panic in the daemon's log, and the daemon alive at the end (then stopped by SIGTERM,
//!   with status 0);
//! - its RSS at the end within 20% of what it was after the warm-up;
//! - the node cache and rules tables consistent (see `tables.rs`).
//!
//! `INSPECTOR_FUZZ_REQUESTS` (default 5,000, the CI smoke) sets the number of requests,
//! `INSPECTOR_FUZZ_SEED` (decimal or 0x-hex) replays a run: each connection's requests follow
//! from the seed (answers, such as which rules exist, can still differ with timing).
//! `INSPECTOR_FUZZ_SHAPES` sets how many request shapes are listed per cause of drop;
//! `INSPECTOR_FUZZ_KEEP` keeps the daemon's directory (log, database) after a run that
//! passed too (a failed run always keeps it).
//! Without Ironic the run prints a skip line, unless `CI` is set, where it fails.
//!
//! Layout: `generate` (requests) and `mutate` (JSON mutations) with `rng`; `wire` (HTTP/1.1
//! by hand); `worker` (one connection: send, check, tell drops from announced closes);
//! `stats` and `summary`; `daemon` (the child process); `tables` (the database afterwards).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod daemon;
#[path = "../e2e/daemon_binary.rs"]
mod daemon_binary;
mod generate;
#[allow(dead_code)] // shared with the api and e2e tests; the Ironic client uses its waits
#[path = "../api/helpers.rs"]
mod helpers;
#[path = "../e2e/ironic_api.rs"]
mod ironic_api;
mod mutate;
#[path = "../support/ports.rs"]
mod ports;
mod rng;
#[path = "../support/service_env.rs"]
mod service_env;
mod stats;
mod summary;
mod tables;
mod wire;
mod worker;

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::daemon::Daemon;
use crate::generate::{FIXTURE_FILES, Generator, RealNode, World};
use crate::ironic_api::{IronicApi, unique_macs};
use crate::stats::Stats;
use crate::summary::{DaemonEnd, Memory, Summary};
use crate::worker::{ANSWER_DEADLINE, Worker, heavy, phase};

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
/// The daemon's `max_request_body_size` for the run: small, so that 413 is reached with
/// bodies that are cheap to send.
const BODY_LIMIT: usize = 256 * 1024;
/// After the warm-up, the run is cut in this many steps, the RSS read after each.
const RSS_STEPS: usize = 8;
/// An answer slower than this keeps the daemon's log even when the run passes.
const SLOW_ANSWER: Duration = Duration::from_secs(20);
/// Drop shapes shown per cause (`INSPECTOR_FUZZ_SHAPES` shows more).
const SHAPES_SHOWN_DEFAULT: usize = 25;
/// How long the end of the run waits for the nodes' introspections to be stopped.
const SETTLE_DEADLINE: Duration = Duration::from_secs(300);

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
        .map(|i| {
            let own = match i.checked_sub(FUZZ_CONNECTIONS) {
                None => Vec::new(),
                Some(flow) => (flow * NODES_PER_FLOW..(flow + 1) * NODES_PER_FLOW).collect(),
            };
            let seed = seed ^ (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            Worker::new(Generator::new(world.clone(), seed, own), daemon.port)
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
    let memory = Memory {
        before_heavy: rss_before_heavy,
        after_warm_up: rss_warm,
        steps: rss_steps,
        end: daemon.rss_kib(),
        peak: daemon.peak_rss_kib(),
        files_after_warm_up: files_warm,
        files_end: daemon.open_files(),
    };
    let known: BTreeSet<String> = nodes.iter().map(|n| n.uuid.clone()).collect();
    let api = format!("http://127.0.0.1:{}", daemon.port);
    let (table_problems, counts) = tables::check(&daemon.database, &api, &known, run_started).await;
    let alive = daemon.is_alive();
    let stopped = if alive {
        daemon.stop().await
    } else {
        Err("it had died".to_string())
    };
    // Read after the stop, so that a panic while stopping counts too.
    let log = daemon.output();
    let daemon_end = DaemonEnd {
        alive,
        panics: log
            .lines()
            .filter(|l| l.contains("panicked"))
            .map(str::to_string)
            .collect(),
        error_lines: log.lines().filter(|l| l.contains(" ERROR ")).count(),
        stopped,
    };

    let summary = Summary {
        name: NAME,
        seed,
        total,
        warm_up,
        connections: CONNECTIONS,
        elapsed,
        stats,
        memory,
        daemon: daemon_end,
        table_problems,
        counts,
        settle,
    };
    let shapes_shown =
        env_number("INSPECTOR_FUZZ_SHAPES").map_or(SHAPES_SHOWN_DEFAULT, |n| n as usize);
    println!("{}", summary.render(shapes_shown));
    let failures = summary.failures();
    if failures.is_empty() {
        println!("{NAME}: ok");
        let slow = summary
            .stats
            .slowest
            .first()
            .is_some_and(|(took, _)| *took > SLOW_ANSWER);
        if slow || std::env::var_os("INSPECTOR_FUZZ_KEEP").is_some_and(|v| !v.is_empty()) {
            // An answer that took long is no failure, but its cause is worth a look.
            println!(
                "{NAME}: kept {} (inspector.log, inspector.stderr, inspector.sqlite){}",
                dir.keep().display(),
                if slow {
                    ": an answer took over 20 s"
                } else {
                    ""
                }
            );
        }
        return ExitCode::SUCCESS;
    }
    println!(
        "{NAME}: FAILED (replay with INSPECTOR_FUZZ_SEED={seed:#x} INSPECTOR_FUZZ_REQUESTS={total}):"
    );
    for failure in &failures {
        println!("  - {failure}");
    }
    // Keep the daemon's log and database for a look.
    let kept = dir.keep();
    println!(
        "{NAME}: kept {} (inspector.log, inspector.stderr, inspector.sqlite, inspector.conf)",
        kept.display()
    );
    ExitCode::FAILURE
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

//! Firewall update cost: ours (one `iptables-restore --noflush` per update) against
//! upstream's way (one `iptables` process per MAC), with real iptables in a network namespace
//! this benchmark creates and removes. Run as root: `cargo bench --bench firewall`.
//!
//! Prints one line per size, `ports=N ours_s=… per_mac_s=… processes=…` (`processes`: how
//! many processes our update started). `ours_s` is a steady-state update: the chain already
//! holds N rules and is replaced by N rules. `per_mac_s` runs upstream's whole sequence
//! (temporary chain, one `-A` per MAC, swap) once. iptables-nft's `-A` slows down as the chain
//! grows, so for 50,000 ports the per-MAC figure is extrapolated from samples (marked
//! `per_mac_s~=`, explained on the line after).
//!
//! With `INSPECTOR_TEST_IRONIC_URL` set (scripts/services/ironic.sh), it also times listing
//! 10,000 ports from that Ironic through the daemon's client (all pages), creating them first
//! (at most 8 requests at once) and deleting them afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ironic_inspector::config::{Config, oslo::RawConfig};
use ironic_inspector::firewall::Firewall;
use ironic_inspector::firewall::iptables::{Iptables, Settings};
use ironic_inspector::ironic::IronicClient;
use ironic_inspector::mac::Mac;

const INTERFACE: &str = "fwbench0";
const CHAIN: &str = "ironic-inspector";
/// Sizes measured; above this many MACs the per-MAC way is sampled, not run whole.
const SIZES: [usize; 4] = [100, 1_000, 10_000, 50_000];
const PER_MAC_FULL_LIMIT: usize = 10_000;
/// Appends timed at each sample point of the extrapolation.
const SAMPLE_APPENDS: usize = 300;
const SAMPLE_POINTS: usize = 5;
const IRONIC_PORTS: usize = 10_000;
const IRONIC_CONCURRENCY: usize = 8;

struct Netns(String);

impl Netns {
    fn create() -> Netns {
        let name = format!("insp-bench-{}", std::process::id());
        run(&["ip", "netns", "add", &name]);
        let netns = Netns(name);
        netns.exec(&[
            "ip", "link", "add", INTERFACE, "type", "veth", "peer", "name", "fwbench1",
        ]);
        netns
    }

    fn exec(&self, argv: &[&str]) {
        let mut full = vec!["ip", "netns", "exec", &self.0];
        full.extend_from_slice(argv);
        run(&full);
    }

    fn restore(&self, script: &str) {
        use std::io::Write;
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.0,
                "iptables-restore",
                "-w",
                "--noflush",
            ])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success(), "iptables-restore failed");
    }

    fn helper(&self) -> Vec<String> {
        ["ip", "netns", "exec", &self.0]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn run(argv: &[&str]) {
    let output = Command::new(argv[0]).args(&argv[1..]).output().unwrap();
    assert!(
        output.status.success(),
        "{}: {}",
        argv.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn mac(prefix: u8, i: usize) -> String {
    format!(
        "02:{prefix:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        (i >> 24) & 0xff,
        (i >> 16) & 0xff,
        (i >> 8) & 0xff,
        i & 0xff
    )
}

fn backend(netns: &Netns, per_rule: bool) -> Iptables {
    Iptables::new(Settings {
        root_helper: netns.helper(),
        interface: INTERFACE.to_string(),
        chain: CHAIN.to_string(),
        per_rule,
    })
    .unwrap()
}

/// Our update of `n` MACs over a chain already holding `n` others: (seconds, processes).
async fn ours(netns: &Netns, n: usize) -> (f64, u64) {
    let fw = backend(netns, false);
    fw.init().await.unwrap();
    assert!(fw.uses_restore().await, "iptables-restore not usable");
    let first: BTreeSet<Mac> = (0..n).map(|i| mac(1, i).parse().unwrap()).collect();
    let second: BTreeSet<Mac> = (0..n).map(|i| mac(2, i).parse().unwrap()).collect();
    fw.update(&first).await.unwrap();
    let before = fw.processes_started();
    let start = Instant::now();
    fw.update(&second).await.unwrap();
    let elapsed = start.elapsed().as_secs_f64();
    let processes = fw.processes_started() - before;
    fw.clean_up().await.unwrap();
    (elapsed, processes)
}

/// Upstream's update of `n` MACs, run whole.
async fn per_mac(netns: &Netns, n: usize) -> f64 {
    let fw = backend(netns, true);
    fw.init().await.unwrap();
    let macs: BTreeSet<Mac> = (0..n).map(|i| mac(3, i).parse().unwrap()).collect();
    let start = Instant::now();
    fw.update(&macs).await.unwrap();
    let elapsed = start.elapsed().as_secs_f64();
    fw.clean_up().await.unwrap();
    elapsed
}

/// Upstream's update of `n` MACs, extrapolated: the cost of one `iptables -A` is sampled at
/// `SAMPLE_POINTS` chain lengths between 0 and `n` (the chain pre-filled untimed) and
/// integrated (trapezoids); the fixed commands of the swap are added as measured on an
/// empty update. Returns (seconds, appends timed).
async fn per_mac_sampled(netns: &Netns, n: usize) -> (f64, usize) {
    let fixed = per_mac(netns, 0).await;
    let temp = format!("{CHAIN}_temp");
    netns.exec(&["iptables", "-N", &temp]);
    let mut filled = 0;
    let mut points = Vec::new();
    for k in 0..SAMPLE_POINTS {
        let at = (n - SAMPLE_APPENDS) * k / (SAMPLE_POINTS - 1);
        if at > filled {
            let mut script = String::from("*filter\n");
            for i in filled..at {
                script.push_str(&format!(
                    "-A {temp} -m mac --mac-source {} -j DROP\n",
                    mac(4, i)
                ));
            }
            script.push_str("COMMIT\n");
            netns.restore(&script);
            filled = at;
        }
        let start = Instant::now();
        for i in 0..SAMPLE_APPENDS {
            let m = mac(5, k * SAMPLE_APPENDS + i);
            let mut cmd = tokio::process::Command::new("ip");
            cmd.args(["netns", "exec", &netns.0, "iptables", "-w", "-A", &temp]);
            cmd.args(["-m", "mac", "--mac-source", &m, "-j", "DROP"]);
            assert!(cmd.status().await.unwrap().success());
        }
        filled += SAMPLE_APPENDS;
        points.push((
            at + SAMPLE_APPENDS / 2,
            start.elapsed().as_secs_f64() / SAMPLE_APPENDS as f64,
        ));
    }
    netns.exec(&["iptables", "-F", &temp]);
    netns.exec(&["iptables", "-X", &temp]);
    // Integrate cost-per-append over chain lengths 0..n.
    let mut total = points[0].1 * points[0].0 as f64;
    for pair in points.windows(2) {
        let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
        total += (y0 + y1) / 2.0 * (x1 - x0) as f64;
    }
    let (last_x, last_y) = points[points.len() - 1];
    total += last_y * (n - last_x) as f64;
    (fixed + total, SAMPLE_APPENDS * SAMPLE_POINTS)
}

fn ironic_client(url: &str) -> IronicClient {
    let mut raw = RawConfig::default();
    let text = format!(
        "[DEFAULT]\nauth_strategy = noauth\n[ironic]\nauth_strategy = noauth\nironic_url = {url}\n"
    );
    raw.merge_str(&text, Path::new("bench.conf")).unwrap();
    let (config, _) = Config::from_raw(&raw).unwrap();
    IronicClient::from_config(&config).unwrap()
}

/// Creates a node with `IRONIC_PORTS` ports, times listing every port through the daemon's
/// client, deletes the node (and with it its ports).
async fn ironic_listing(url: &str) {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(IRONIC_CONCURRENCY)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let base = url.trim_end_matches('/').to_string();
    let node: serde_json::Value = http
        .post(format!("{base}/v1/nodes"))
        .header("X-OpenStack-Ironic-API-Version", "1.6")
        .json(&serde_json::json!({"driver": "fake-hardware", "name": format!("fw-bench-{}", std::process::id())}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let uuid = node["uuid"].as_str().expect("node uuid").to_string();
    let created = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let prefix = (std::process::id() & 0xff) as u8;
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..IRONIC_CONCURRENCY {
        let (http, base, uuid, next) = (http.clone(), base.clone(), uuid.clone(), next.clone());
        workers.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= IRONIC_PORTS {
                    return;
                }
                let body = serde_json::json!({"node_uuid": uuid, "address": mac(0x80 | prefix, i)});
                for attempt in 0.. {
                    let sent = http
                        .post(format!("{base}/v1/ports"))
                        .header("X-OpenStack-Ironic-API-Version", "1.6")
                        .json(&body)
                        .send()
                        .await;
                    match sent {
                        Ok(r) if r.status().is_success() || r.status() == 409 => break,
                        Ok(r) if attempt < 20 => eprintln!("port create: {}", r.status()),
                        Err(e) if attempt < 20 => eprintln!("port create: {e}"),
                        other => panic!("port create failed: {other:?}"),
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        done.unwrap();
    }
    println!(
        "ironic: created {IRONIC_PORTS} ports in {:.1} s ({IRONIC_CONCURRENCY} at once)",
        created.elapsed().as_secs_f64()
    );
    let client = ironic_client(&base);
    let start = Instant::now();
    let ports = client.list_ports().await.unwrap();
    println!(
        "ironic_list_ports={} list_s={:.3} (GET /v1/ports/detail, all pages, through the daemon's client)",
        ports.len(),
        start.elapsed().as_secs_f64()
    );
    let deleted = http
        .delete(format!("{base}/v1/nodes/{uuid}"))
        .header("X-OpenStack-Ironic-API-Version", "1.6")
        .send()
        .await
        .unwrap();
    assert!(
        deleted.status().is_success(),
        "deleting the bench node: {}",
        deleted.status()
    );
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("firewall benchmark: run it with `cargo bench --bench firewall` (as root)");
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let netns = Netns::create();
    runtime.block_on(async {
        for n in SIZES {
            let (ours_s, processes) = ours(&netns, n).await;
            if n <= PER_MAC_FULL_LIMIT {
                let per_mac_s = per_mac(&netns, n).await;
                println!(
                    "ports={n} ours_s={ours_s:.3} per_mac_s={per_mac_s:.1} processes={processes}"
                );
            } else {
                let (per_mac_s, sampled) = per_mac_sampled(&netns, n).await;
                println!(
                    "ports={n} ours_s={ours_s:.3} per_mac_s~={per_mac_s:.1} processes={processes}"
                );
                println!(
                    "  (per_mac_s~ for {n} is extrapolated, not run whole: {sampled} single-MAC \
                     iptables -A timed at {SAMPLE_POINTS} chain lengths from 0 to {n}, integrated)"
                );
            }
        }
        match std::env::var("INSPECTOR_TEST_IRONIC_URL") {
            Ok(url) if !url.trim().is_empty() => ironic_listing(&url).await,
            _ => println!("ironic: INSPECTOR_TEST_IRONIC_URL unset; listing not timed"),
        }
    });
    drop(netns);
}

//! The end of a run: what was sent and seen, printed every time, and the bar it is held to.

use std::fmt::Write as _;
use std::process::ExitStatus;
use std::time::Duration;

use crate::stats::{self, Stats};
use crate::tables::Counts;

/// How much the RSS may grow after the warm-up.
pub const RSS_TOLERANCE: f64 = 0.20;

/// The daemon's memory in KiB, read from /proc at the marks of the run.
pub struct Memory {
    pub before_heavy: u64,
    pub after_warm_up: u64,
    pub steps: Vec<u64>,
    pub end: u64,
    pub peak: u64,
    pub files_after_warm_up: usize,
    pub files_end: usize,
}

impl Memory {
    fn growth(&self) -> f64 {
        (self.end as f64 - self.after_warm_up as f64) / self.after_warm_up.max(1) as f64
    }
}

/// How the daemon ended.
pub struct DaemonEnd {
    pub alive: bool,
    /// Log lines that tell of a panic.
    pub panics: Vec<String>,
    pub error_lines: usize,
    /// Its exit status after SIGTERM, or why there is none.
    pub stopped: Result<ExitStatus, String>,
}

pub struct Summary {
    pub name: &'static str,
    pub seed: u64,
    pub total: usize,
    pub warm_up: usize,
    pub connections: usize,
    pub elapsed: Duration,
    pub stats: Stats,
    pub memory: Memory,
    pub daemon: DaemonEnd,
    pub table_problems: Vec<String>,
    pub counts: Counts,
    /// Whether every node's introspection could be ended after the run.
    pub settle: Result<(), String>,
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

impl Summary {
    /// What the run sent and saw; `shapes_shown` request shapes per cause of drop.
    pub fn render(&self, shapes_shown: usize) -> String {
        let Summary {
            name,
            seed,
            warm_up,
            connections,
            stats,
            memory,
            daemon,
            counts,
            ..
        } = self;
        let mut out = String::new();
        let secs = self.elapsed.as_secs_f64();
        let _ = writeln!(out, "\n{name} summary (seed {seed:#x})");
        let _ = writeln!(
            out,
            "  requests      {} in {secs:.1} s ({:.0} requests/s); the first {warm_up} and {} heavy ones were the warm-up",
            stats.requests,
            stats.requests as f64 / secs.max(0.001),
            stats.heavy
        );
        let _ = writeln!(
            out,
            "  connections   {} opened, {connections} at a time; {} requests on a reused (keep-alive) connection; {} closes announced by Connection: close",
            stats.connections, stats.reused, stats.announced_closes
        );
        let _ = writeln!(out, "  by route and method:");
        let mut route_lines: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
        for ((route, method), n) in &stats.by_route {
            route_lines
                .entry(route.name())
                .or_default()
                .push(format!("{} {n}", stats::escape(method.as_bytes(), 16)));
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
            .map(|(s, n)| match s {
                0 => format!("closed without an answer: {n}"),
                s => format!("{s}: {n}"),
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
            for (shape, n) in shapes.iter().take(shapes_shown) {
                let _ = writeln!(out, "      {n:>6}  {shape}");
            }
            if shapes.len() > shapes_shown {
                let _ = writeln!(out, "      ... {} more shapes", shapes.len() - shapes_shown);
            }
        }
        let _ = writeln!(out, "  breaches      {:?}", stats.breaches);
        let _ = writeln!(out, "  503 outages   {:?}", stats.outages);
        let _ = writeln!(
            out,
            "  daemon        {}; panics in its log: {}; ERROR lines: {}; SIGTERM: {}",
            if daemon.alive {
                "alive at the end"
            } else {
                "DEAD at the end"
            },
            daemon.panics.len(),
            daemon.error_lines,
            match &daemon.stopped {
                Ok(status) => format!("{status}"),
                Err(e) => e.clone(),
            }
        );
        let _ = writeln!(
            out,
            "  RSS           {:.1} MiB after the warm-up, {:.1} MiB at the end ({:+.1}%, at most {:+.0}%), peak {:.1} MiB",
            mib(memory.after_warm_up),
            mib(memory.end),
            memory.growth() * 100.0,
            RSS_TOLERANCE * 100.0,
            mib(memory.peak)
        );
        let steps: Vec<String> = memory
            .steps
            .iter()
            .map(|kib| format!("{:.1}", mib(*kib)))
            .collect();
        let _ = writeln!(
            out,
            "  RSS by step   {:.1} before the heavy requests; {} MiB",
            mib(memory.before_heavy),
            steps.join(", ")
        );
        let _ = writeln!(
            out,
            "  open files    {} after the warm-up, {} at the end",
            memory.files_after_warm_up, memory.files_end
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
            if self.table_problems.is_empty() {
                "consistent".to_string()
            } else {
                format!("{} problems", self.table_problems.len())
            }
        );
        for problem in self.table_problems.iter().take(20) {
            let _ = writeln!(out, "    {problem}");
        }
        if let Err(problem) = &self.settle {
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
        out
    }

    /// Every way the run missed the bar (none: it passed).
    pub fn failures(&self) -> Vec<String> {
        let stats = &self.stats;
        let mut failed = Vec::new();
        if stats.requests < self.total {
            failed.push(format!(
                "only {} of {} requests were sent",
                stats.requests, self.total
            ));
        }
        if stats.drop_count() > 0 {
            failed.push(format!("{} dropped connections", stats.drop_count()));
        }
        if !stats.breaches.is_empty() {
            failed.push(format!("answers that break the bar: {:?}", stats.breaches));
        }
        if !self.daemon.alive {
            failed.push("the daemon died".to_string());
        }
        if let Some(first) = self.daemon.panics.first() {
            failed.push(format!(
                "{} panics in the daemon's log, first: {first}",
                self.daemon.panics.len()
            ));
        }
        match &self.daemon.stopped {
            Err(e) => failed.push(format!("SIGTERM: {e}")),
            Ok(status) if !status.success() => {
                failed.push(format!("the daemon exited with {status} after SIGTERM"));
            }
            Ok(_) => {}
        }
        let growth = self.memory.growth();
        if growth > RSS_TOLERANCE {
            failed.push(format!(
                "RSS grew by {:.1}% after the warm-up",
                growth * 100.0
            ));
        }
        if !self.table_problems.is_empty() {
            failed.push(format!(
                "{} inconsistencies in the tables",
                self.table_problems.len()
            ));
        }
        if let Err(problem) = &self.settle {
            failed.push(problem.clone());
        }
        failed
    }
}

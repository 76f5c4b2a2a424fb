//! What the run sent and what came back: counts for the summary, and every breach of the
//! bar (5xx, drops, bodies that are not our JSON error) with a sample of the request.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::generate::{Flow, Request, Route};
use crate::wire::Response;

/// The header every answer of the API carries (an answer without it came from the HTTP
/// layer, not from the API).
const MIN_VERSION_HEADER: &str = "X-OpenStack-Ironic-Inspector-API-Minimum-Version";
/// How many failing requests are shown in full, per kind of failure.
const SAMPLES: usize = 3;

#[derive(Default)]
pub struct Stats {
    pub requests: usize,
    /// The heavy requests at the end of the warm-up (counted in `requests` too).
    pub heavy: usize,
    pub by_route: BTreeMap<(Route, String), usize>,
    pub statuses: BTreeMap<u16, usize>,
    pub connections: usize,
    /// Requests sent on a connection that had answered before (keep-alive).
    pub reused: usize,
    /// Connections the server closed after saying so (`Connection: close`).
    pub announced_closes: usize,
    /// Drops: cause -> request shape -> count.
    pub drops: BTreeMap<&'static str, BTreeMap<String, usize>>,
    /// Breaches other than drops: kind -> count.
    pub breaches: BTreeMap<&'static str, usize>,
    /// 503 answers whose message names an outage of a service we depend on.
    pub outages: BTreeMap<String, usize>,
    /// Requests that are not HTTP/1.1, refused by the HTTP layer (4xx, connection closed).
    pub http_refusals: BTreeMap<u16, usize>,
    /// Truncated requests (the head promised more body than was sent, then the sending
    /// side was shut): answered, or closed without an answer.
    pub truncated_answered: usize,
    pub truncated_closed: usize,
    /// Starts and reports of the node walkers: answer (status and message) -> count.
    pub starts: BTreeMap<String, usize>,
    pub reports: BTreeMap<String, usize>,
    /// Failing requests shown in full: kind of failure -> samples.
    pub samples: BTreeMap<String, Vec<String>>,
    /// Per route: requests timed, their total time, the slowest.
    pub latency: BTreeMap<Route, (usize, Duration, Duration)>,
    /// The slowest requests: time and shape.
    pub slowest: Vec<(Duration, String)>,
}

impl Stats {
    pub fn merge(&mut self, other: Stats) {
        self.requests += other.requests;
        self.heavy += other.heavy;
        for (k, v) in other.by_route {
            *self.by_route.entry(k).or_default() += v;
        }
        for (k, v) in other.statuses {
            *self.statuses.entry(k).or_default() += v;
        }
        self.connections += other.connections;
        self.reused += other.reused;
        self.announced_closes += other.announced_closes;
        for (cause, shapes) in other.drops {
            let mine = self.drops.entry(cause).or_default();
            for (shape, n) in shapes {
                *mine.entry(shape).or_default() += n;
            }
        }
        for (k, v) in other.breaches {
            *self.breaches.entry(k).or_default() += v;
        }
        for (k, v) in other.outages {
            *self.outages.entry(k).or_default() += v;
        }
        for (k, v) in other.http_refusals {
            *self.http_refusals.entry(k).or_default() += v;
        }
        self.truncated_answered += other.truncated_answered;
        self.truncated_closed += other.truncated_closed;
        for (k, v) in other.starts {
            *self.starts.entry(k).or_default() += v;
        }
        for (k, v) in other.reports {
            *self.reports.entry(k).or_default() += v;
        }
        for (route, (n, total, max)) in other.latency {
            let mine = self.latency.entry(route).or_default();
            mine.0 += n;
            mine.1 += total;
            mine.2 = mine.2.max(max);
        }
        for slow in other.slowest {
            self.note_slowest(slow.0, slow.1);
        }
        for (kind, samples) in other.samples {
            let mine = self.samples.entry(kind).or_default();
            for sample in samples {
                if mine.len() < SAMPLES {
                    mine.push(sample);
                }
            }
        }
    }

    /// Records how long a request took.
    /// Records how long a request sent at `sent` (wall clock, to match the daemon's log)
    /// took.
    pub fn timed(
        &mut self,
        request: &Request,
        sent: SystemTime,
        took: Duration,
        status: Option<u16>,
    ) {
        let entry = self.latency.entry(request.route).or_default();
        entry.0 += 1;
        entry.1 += took;
        entry.2 = entry.2.max(took);
        let status = status.map_or("no answer".to_string(), |s| s.to_string());
        let since_midnight = sent
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64() % 86_400.0);
        let at = format!(
            "{:02}:{:02}:{:06.3}Z",
            (since_midnight / 3600.0) as u32,
            (since_midnight % 3600.0 / 60.0) as u32,
            since_midnight % 60.0
        );
        self.note_slowest(
            took,
            format!("{} -> {status}, sent at {at}", request.shape()),
        );
    }

    fn note_slowest(&mut self, took: Duration, shape: String) {
        const KEEP: usize = 8;
        if self.slowest.len() < KEEP || self.slowest.last().is_some_and(|(t, _)| *t < took) {
            self.slowest.push((took, shape));
            self.slowest.sort_by_key(|s| std::cmp::Reverse(s.0));
            self.slowest.truncate(KEEP);
        }
    }

    pub fn drop_count(&self) -> usize {
        self.drops.values().flat_map(|s| s.values()).sum()
    }

    pub fn sent(&mut self, request: &Request, reused: bool) {
        self.requests += 1;
        if request.flow == Some(Flow::Heavy) {
            self.heavy += 1;
        }
        let method = if request.method.len() > 16 {
            "<long method>".to_string()
        } else {
            request.method.clone()
        };
        *self.by_route.entry((request.route, method)).or_default() += 1;
        if reused {
            self.reused += 1;
        }
    }

    pub fn drop(&mut self, cause: &'static str, shape: String, request: &Request, detail: &str) {
        *self
            .drops
            .entry(cause)
            .or_default()
            .entry(shape)
            .or_default() += 1;
        self.sample(cause, request, detail);
    }

    fn breach(&mut self, kind: &'static str, request: &Request, response: &Response) {
        *self.breaches.entry(kind).or_default() += 1;
        let detail = format!(
            "answer {} {:?}: {}",
            response.status,
            response.headers,
            escape(&response.body, 300)
        );
        self.sample(kind, request, &detail);
    }

    /// Keeps a sample of a request worth a look that is no failure.
    pub fn note(&mut self, kind: &str, request: &Request, detail: &str) {
        self.sample(kind, request, detail);
    }

    fn sample(&mut self, kind: &str, request: &Request, detail: &str) {
        let samples = self.samples.entry(kind.to_string()).or_default();
        if samples.len() < SAMPLES {
            samples.push(format!(
                "{}\n      head: {}\n      body: {}\n      {detail}",
                request.shape(),
                escape(&request.wire.head, 400),
                escape(&request.wire.body, 200),
            ));
        }
    }

    /// Checks one answer against the bar and counts it.
    pub fn answered(&mut self, request: &Request, response: &Response) {
        *self.statuses.entry(response.status).or_default() += 1;
        match request.flow {
            Some(Flow::Start) => *self.starts.entry(answer_summary(response)).or_default() += 1,
            Some(Flow::Report) => *self.reports.entry(answer_summary(response)).or_default() += 1,
            Some(Flow::Heavy) | None => {}
        }
        if request.wire.half_close {
            self.truncated_answered += 1;
        }
        let from_api = response.header(MIN_VERSION_HEADER).is_some()
            && response
                .header("X-OpenStack-Ironic-Inspector-API-Maximum-Version")
                .is_some();
        if !from_api {
            if request.malformed_http
                && (400..500).contains(&response.status)
                && response.announces_close()
            {
                *self.http_refusals.entry(response.status).or_default() += 1;
            } else if request.malformed_http {
                self.breach(
                    "malformed request answered without closing, or not with a 4xx",
                    request,
                    response,
                );
            } else {
                self.breach(
                    "answer without the API's version headers (not from the API)",
                    request,
                    response,
                );
            }
            return;
        }
        if response.status >= 500 {
            let message = error_message(&response.body);
            match message {
                Some(m)
                    if response.status == 503
                        && (m.contains("unavailable") || m.contains("not available")) =>
                {
                    *self.outages.entry(m).or_default() += 1;
                }
                _ => self.breach("5xx answer", request, response),
            }
        }
        if response.status >= 400 && !request.wire.is_head {
            let json_type = response
                .header("content-type")
                .is_some_and(|v| v.starts_with(b"application/json"));
            if !json_type || error_message(&response.body).is_none() {
                self.breach(
                    "error answer not JSON {\"error\": {\"message\": ...}}",
                    request,
                    response,
                );
            }
        }
        if response.status == 200
            && !request.wire.is_head
            && serde_json::from_slice::<Value>(&response.body).is_err()
        {
            self.breach("200 answer not JSON", request, response);
        }
    }
}

/// The status of an answer and the start of its error message, if any.
pub fn answer_summary(response: &Response) -> String {
    match error_message(&response.body) {
        Some(message) => {
            let short: String = message.chars().take(48).collect();
            format!("{} {short:?}", response.status)
        }
        None => response.status.to_string(),
    }
}

/// `message` of a `{"error": {"message": "..."}}` body.
pub fn error_message(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let error = value.as_object()?.get("error")?.as_object()?;
    error.get("message")?.as_str().map(str::to_string)
}

/// Printable bytes, cut at `max`.
pub fn escape(bytes: &[u8], max: usize) -> String {
    let shown = &bytes[..bytes.len().min(max)];
    let mut text: String = shown.escape_ascii().to_string();
    if bytes.len() > max {
        text.push_str(&format!("... ({} bytes)", bytes.len()));
    }
    text
}

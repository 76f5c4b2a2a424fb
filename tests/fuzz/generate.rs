//! The request generator: every route and method of the API, valid and mutated bodies, and
//! odd headers and framing, written as HTTP/1.1 bytes.
//!
//! Each connection's generator has its own seeded [`Rng`]. Most connections fuzz; a few act
//! like Ironic and a ramdisk on the nodes enrolled in the real Ironic (start introspection,
//! then post the node's report), so that valid requests reach the daemon's real code paths
//! (Ironic calls, hooks, rules, storage) while the fuzzing goes on around them.

use std::fmt::Write as _;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::mutate;
use crate::rng::Rng;
use crate::wire::{Response, WireRequest};

/// The API version header.
const VERSION_HEADER: &str = "X-OpenStack-Ironic-Inspector-API-Version";

/// A node enrolled in the real Ironic for this run.
#[derive(Clone, Debug)]
pub struct RealNode {
    pub uuid: String,
    pub macs: [String; 2],
    pub bmc: String,
    /// Left in `enroll`, where new IPMI credentials may be asked for.
    pub enroll: bool,
}

/// What every generator knows about the run.
pub struct World {
    pub port: u16,
    pub nodes: Vec<RealNode>,
    /// Ramdisk reports from tests/fixtures: file name and text.
    pub fixtures: Vec<(&'static str, String)>,
    /// `[oslo_middleware] max_request_body_size` of the daemon.
    pub body_limit: usize,
}

/// Fixture placeholders (tests/fixtures/README.md) replaced by a real node's identity.
const FIXTURE_MACS: [&str; 2] = ["52:54:00:00:00:01", "52:54:00:00:00:02"];
const FIXTURE_BMC: &str = "192.0.2.100";
pub const FIXTURE_FILES: &[&str] = &[
    "liberty-flat.json",
    "liberty-bash-dib.json",
    "liberty-error.json",
    "ipa-inventory.json",
    "ipa-inventory-no-bmc.json",
];

impl World {
    /// Fixture `index` as node `node` would report it (`None`: the placeholder identity,
    /// which no node has).
    pub fn report(&self, index: usize, node: Option<&RealNode>) -> Value {
        let mut text = self.fixtures[index].1.clone();
        if let Some(node) = node {
            for (placeholder, mac) in FIXTURE_MACS.iter().zip(&node.macs) {
                text = text
                    .replace(placeholder, mac)
                    .replace(&placeholder.replace(':', "-"), &mac.replace(':', "-"));
            }
            text = text.replace(FIXTURE_BMC, &node.bmc);
        }
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }
}

/// The API's routes, for the statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Route {
    Root,
    V1,
    OtherVersion,
    Introspection,
    Data,
    Abort,
    Continue,
    Rules,
    Rule,
    Unknown,
}

impl Route {
    pub fn name(self) -> &'static str {
        match self {
            Route::Root => "/",
            Route::V1 => "/v1",
            Route::OtherVersion => "/<other version>",
            Route::Introspection => "/v1/introspection/<uuid>",
            Route::Data => "/v1/introspection/<uuid>/data",
            Route::Abort => "/v1/introspection/<uuid>/abort",
            Route::Continue => "/v1/continue",
            Route::Rules => "/v1/rules",
            Route::Rule => "/v1/rules/<uuid>",
            Route::Unknown => "<unknown route>",
        }
    }

    fn served(self) -> &'static [&'static str] {
        match self {
            Route::Root | Route::V1 | Route::OtherVersion | Route::Data => &["GET", "HEAD"],
            Route::Introspection => &["GET", "POST"],
            Route::Abort | Route::Continue => &["POST"],
            Route::Rules => &["GET", "POST", "DELETE"],
            Route::Rule => &["GET", "DELETE"],
            Route::Unknown => &["GET", "POST"],
        }
    }
}

/// Methods tried on every route: the standard ones, extension methods, a lower-case one.
const METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "PROPFIND",
    "M-SEARCH", "get", "FUZZ",
];

/// One generated request and what it is, for the statistics and the failure report.
#[derive(Clone, Debug)]
pub struct Request {
    pub wire: WireRequest,
    pub route: Route,
    pub method: String,
    /// What the body is (`none`, `valid report`, `mutated rule`, ...).
    pub body_kind: &'static str,
    /// Body length before framing.
    pub body_len: usize,
    /// How the body is framed (`none`, `length`, `chunked`, ...).
    pub framing: &'static str,
    /// Not valid HTTP/1.1 on purpose: the HTTP layer, not the API, answers it.
    pub malformed_http: bool,
    /// A start or a report of this generator's own node.
    pub flow: Option<Flow>,
}

/// Requests sent as a client that means it would send them (not fuzzed): the node walk,
/// and the heavy requests that end the warm-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Start,
    Report,
    Heavy,
}

impl Request {
    /// A one-line description of the request's shape (route, method, body, framing).
    pub fn shape(&self) -> String {
        let mut shape = format!("{} {}", self.method, self.route.name());
        if self.body_len > 0 || self.framing != "none" {
            let _ = write!(
                shape,
                ", {} body of {} ({})",
                self.body_kind,
                size_class(self.body_len),
                self.framing
            );
        }
        if self.wire.expect_continue {
            shape.push_str(", Expect: 100-continue");
        }
        shape
    }
}

pub fn size_class(len: usize) -> &'static str {
    match len {
        0 => "0 B",
        1..=1024 => "<= 1 KiB",
        1025..=65536 => "1-64 KiB",
        65537..=262_144 => "64-256 KiB",
        _ => "> 256 KiB",
    }
}

/// The request generator of one connection: a fuzzing one (every route, method, body and
/// header) or a ramdisk-like one, which walks its nodes through introspection: a start, then
/// the node's report, then the next node.
pub struct Generator {
    rng: Rng,
    world: Arc<World>,
    /// Indexes in `world.nodes` of the nodes this generator introspects (none: it fuzzes).
    own: Vec<usize>,
    /// Which of them is next.
    cursor: usize,
    /// Its introspection was started and its report not sent yet.
    own_started: bool,
    /// Rules this generator created (known to exist unless deleted since).
    rules: Vec<String>,
}

impl Generator {
    pub fn new(world: Arc<World>, seed: u64, own: Vec<usize>) -> Generator {
        Generator {
            rng: Rng::new(seed),
            world,
            own,
            cursor: 0,
            own_started: false,
            rules: Vec::new(),
        }
    }

    /// Learns from an answer: rules created and deleted, where the node walk stands.
    pub fn observe(&mut self, request: &Request, response: Option<&Response>) {
        let status = response.map(|r| r.status);
        match (request.flow, status) {
            (Some(Flow::Start), Some(202)) => self.own_started = true,
            (Some(Flow::Start), _) | (Some(Flow::Report), _) => {
                self.own_started = false;
                self.cursor = (self.cursor + 1) % self.own.len().max(1);
            }
            _ => {}
        }
        let Some(response) = response else { return };
        match (request.route, request.method.as_str(), response.status) {
            (Route::Rules, "POST", 200) => {
                if let Ok(rule) = serde_json::from_slice::<Value>(&response.body)
                    && let Some(uuid) = rule["uuid"].as_str()
                {
                    self.rules.push(uuid.to_string());
                    if self.rules.len() > 64 {
                        self.rules.remove(0);
                    }
                }
            }
            (Route::Rules, "DELETE", 204) => self.rules.clear(),
            _ => {}
        }
    }

    pub fn next_request(&mut self) -> Request {
        if let Some(&node) = self.own.get(self.cursor) {
            return if self.own_started {
                self.own_report(node)
            } else {
                self.own_start(node)
            };
        }
        if self.rng.one_in(200) {
            return self.malformed();
        }
        let route = self.rng.weighted(&[
            (4, Route::Root),
            (3, Route::V1),
            (2, Route::OtherVersion),
            (14, Route::Introspection),
            (5, Route::Data),
            (5, Route::Abort),
            (24, Route::Continue),
            (16, Route::Rules),
            (10, Route::Rule),
            (7, Route::Unknown),
        ]);
        let method = if self.rng.percent(80) {
            self.rng.pick(route.served()).to_string()
        } else if self.rng.one_in(100) {
            "X".repeat(self.rng.log_size(20, 4000))
        } else {
            self.rng.pick(METHODS).to_string()
        };
        let target = self.target(route, &method);
        let (body_kind, body) = self.body(route, &method);
        self.assemble(route, method, target, body_kind, body, None)
    }

    /// The heaviest requests this generator makes, at their largest: a report whose disk
    /// list is repeated up to the body limit (what the mutation that repeats an array's
    /// elements makes at most), one whose `logs` fill the limit, one with as many MACs as
    /// fit, and a rule with as many actions as that mutation makes at most, listed and read
    /// back. Sent on every connection at once at the end of the
    /// warm-up, so that the memory the allocator keeps after such peaks is part of the
    /// reference the end of the run is compared with: a leak grows beyond it, the
    /// allocator's high-water mark does not.
    pub fn heavy_requests(&mut self) -> Vec<Request> {
        let limit = self.world.body_limit;
        let mut requests = Vec::new();
        let ipa = FIXTURE_FILES
            .iter()
            .position(|f| *f == "ipa-inventory.json")
            .unwrap_or(0);
        let mut report = self.world.report(ipa, None);
        let disk = report["inventory"]["disks"][0].clone();
        let copies = (limit - 16 * 1024) / (disk.to_string().len() + 1);
        report["inventory"]["disks"] = Value::Array(vec![disk; copies]);
        let body = serde_json::to_vec(&report).unwrap_or_default();
        requests.push(self.heavy(Route::Continue, "POST", "/v1/continue".into(), body));
        let mut report = self.world.report(0, None);
        report["logs"] = Value::String("QUFB".repeat((limit - 2048) / 4));
        let body = serde_json::to_vec(&report).unwrap_or_default();
        requests.push(self.heavy(Route::Continue, "POST", "/v1/continue".into(), body));
        let mut report = self.world.report(0, None);
        if let Some(interfaces) = report["interfaces"].as_object_mut() {
            let base = self.rng.next_u64() as u32;
            for i in 0..(limit / 80) as u32 {
                let n = base.wrapping_add(i);
                interfaces.insert(
                    format!("nic{i}"),
                    json!({"mac": mac_of(n), "ip": "10.0.0.1"}),
                );
            }
        }
        let body = serde_json::to_vec(&report).unwrap_or_default();
        requests.push(self.heavy(Route::Continue, "POST", "/v1/continue".into(), body));
        let uuid = random_uuid(&mut self.rng);
        let action = json!({"action": "set-capability", "name": "heavy", "value": "x"});
        let rule = json!({"uuid": uuid, "actions": vec![action; mutate::MAX_REPEATS + 1]});
        let body = serde_json::to_vec(&rule).unwrap_or_default();
        requests.push(self.heavy(Route::Rules, "POST", "/v1/rules".into(), body));
        requests.push(self.heavy(Route::Rules, "GET", "/v1/rules".into(), Vec::new()));
        let path = format!("/v1/rules/{uuid}");
        requests.push(self.heavy(Route::Rule, "GET", path.clone(), Vec::new()));
        requests.push(self.heavy(Route::Rule, "DELETE", path, Vec::new()));
        requests
    }

    fn heavy(&mut self, route: Route, method: &str, target: String, body: Vec<u8>) -> Request {
        let kind = if body.is_empty() { "none" } else { "heavy" };
        self.assemble(
            route,
            method.to_string(),
            target,
            kind,
            body,
            Some(Flow::Heavy),
        )
    }

    /// POST /v1/introspection/<own node>, as Ironic or an operator sends it.
    fn own_start(&mut self, own: usize) -> Request {
        let node = &self.world.nodes[own];
        let mut target = format!("/v1/introspection/{}", node.uuid);
        if node.enroll && self.rng.one_in(2) {
            target.push_str("?new_ipmi_username=fuzz&new_ipmi_password=Fuzz1234");
        } else if self.rng.one_in(3) {
            target.push_str("?manage_boot=False");
        }
        let body = if self.rng.one_in(2) {
            json!({"uuid": node.uuid}).to_string().into_bytes()
        } else {
            Vec::new()
        };
        let kind = if body.is_empty() { "none" } else { "valid" };
        self.assemble(
            Route::Introspection,
            "POST".to_string(),
            target,
            kind,
            body,
            Some(Flow::Start),
        )
    }

    /// The own node's report, in one of the fixture formats, sometimes lightly mutated.
    fn own_report(&mut self, own: usize) -> Request {
        let index = self.rng.below(self.world.fixtures.len());
        let mut report = self.world.report(index, Some(&self.world.nodes[own]));
        let kind = if self.rng.one_in(4) {
            mutate::mutate(&mut self.rng, &mut report);
            "mutated report"
        } else {
            "valid report"
        };
        let body = serde_json::to_vec(&report).unwrap_or_default();
        self.assemble(
            Route::Continue,
            "POST".to_string(),
            "/v1/continue".to_string(),
            kind,
            body,
            Some(Flow::Report),
        )
    }

    /// A node UUID as it may appear in a path: real nodes' in every accepted spelling,
    /// unknown ones, and things that are no UUID at all.
    fn path_uuid(&mut self) -> String {
        let real = self.rng.pick(&self.world.nodes).uuid.clone();
        match self.rng.below(20) {
            0..=5 => real,
            6 => real.to_uppercase(),
            7 => format!("{{{real}}}"),
            8 => format!("urn:uuid:{real}"),
            9 => real.replace('-', ""),
            10..=12 => random_uuid(&mut self.rng),
            13 => "00000000-0000-0000-0000-000000000000".to_string(),
            _ => self.bad_uuid(),
        }
    }

    /// Something in the place of a UUID that is none.
    fn bad_uuid(&mut self) -> String {
        let real = self.rng.pick(&self.world.nodes).uuid.clone();
        match self.rng.below(7) {
            0 => real[..real.len() - 1].to_string(),
            1 => format!("{real}0"),
            2 => "g".repeat(32),
            3 => percent_encode(&mutate::long_string_upto(&mut self.rng, 3000)),
            4 => {
                const ODD: [&str; 9] =
                    ["é", "🦀", "\u{0}", "..", ".", "a b", "%", "%zz", "\u{feff}"];
                let odd = self.rng.pick(&ODD);
                percent_encode(odd)
            }
            _ => match self.rng.below(4) {
                0 => "%ff%fe".to_string(),
                1 => "%zz".to_string(),
                2 => "%00".to_string(),
                _ => "a".repeat(self.rng.log_size(1, 30_000)),
            },
        }
    }

    fn rule_uuid(&mut self) -> String {
        if !self.rules.is_empty() && self.rng.percent(60) {
            let uuid = self.rng.pick(&self.rules).clone();
            return match self.rng.below(6) {
                0 => uuid.to_uppercase(),
                1 => format!("{{{uuid}}}"),
                _ => uuid,
            };
        }
        self.path_uuid()
    }

    /// The query string for a start (the parameters it reads, with odd values) or any
    /// other route (random parameters).
    fn query(&mut self, route: Route) -> String {
        if route == Route::Introspection && self.rng.percent(40) {
            let mut params = Vec::new();
            if self.rng.one_in(2) {
                let user = self.odd_param();
                params.push(format!("new_ipmi_username={user}"));
            }
            if self.rng.one_in(2) {
                let password = match self.rng.below(4) {
                    0 => "Fuzz1234".to_string(),
                    1 => "x".repeat(21),
                    _ => self.odd_param(),
                };
                params.push(format!("new_ipmi_password={password}"));
            }
            if self.rng.one_in(2) {
                let value = self
                    .rng
                    .pick(&[
                        "true", "false", "True", "FALSE", "1", "0", "yes", "", "%ff", "tru%00e",
                    ])
                    .to_string();
                params.push(format!("manage_boot={value}"));
                if self.rng.one_in(5) {
                    params.push("manage_boot=true".to_string());
                }
            }
            if params.is_empty() {
                params.push("manage_boot".to_string());
            }
            return format!("?{}", params.join("&"));
        }
        if self.rng.percent(90) {
            return String::new();
        }
        match self.rng.below(5) {
            0 => "?".to_string(),
            1 => "?&&=&".to_string(),
            2 => format!("?{}={}", self.odd_param(), self.odd_param()),
            3 => format!("?a={}", "b".repeat(self.rng.log_size(1, 20_000))),
            _ => "?%zz=%ff".to_string(),
        }
    }

    fn odd_param(&mut self) -> String {
        match self.rng.below(6) {
            0 => String::new(),
            1 => "fuzz".to_string(),
            2 => percent_encode(&mutate::long_string_upto(&mut self.rng, 1000)),
            3 => "%00".to_string(),
            4 => "%ff%c3%28".to_string(),
            _ => {
                const ODD: [&str; 8] = ["é", "🦀", "a&b", "a=b", "+", "%", "\u{202e}", "a;b"];
                let odd = self.rng.pick(&ODD);
                percent_encode(odd)
            }
        }
    }

    fn target(&mut self, route: Route, method: &str) -> String {
        let path = match route {
            Route::Root => (*self.rng.pick(&["/", "/", "/", "//"])).to_string(),
            Route::V1 => (*self.rng.pick(&["/v1", "/v1", "/v1/", "/v1?"])).to_string(),
            Route::OtherVersion => {
                let version = match self.rng.below(8) {
                    0 => "v2".to_string(),
                    1 => "v0".to_string(),
                    2 => "V1".to_string(),
                    3 => "v1.1".to_string(),
                    4 => "%76%31".to_string(),
                    5 => "v%c3%a9".to_string(),
                    6 => percent_encode(&mutate::long_string_upto(&mut self.rng, 3000)),
                    _ => "%ff".to_string(),
                };
                format!("/{version}")
            }
            Route::Introspection if method == "POST" => {
                // Starts of the enrolled nodes are mostly left to the node walkers: each
                // costs several Ironic calls. Unknown UUIDs cost one.
                let uuid = if self.rng.one_in(10) {
                    self.path_uuid()
                } else if self.rng.one_in(2) {
                    random_uuid(&mut self.rng)
                } else {
                    self.bad_uuid()
                };
                format!("/v1/introspection/{uuid}")
            }
            Route::Introspection => format!("/v1/introspection/{}", self.path_uuid()),
            Route::Data => format!("/v1/introspection/{}/data", self.path_uuid()),
            Route::Abort => format!("/v1/introspection/{}/abort", self.path_uuid()),
            Route::Continue => "/v1/continue".to_string(),
            Route::Rules => "/v1/rules".to_string(),
            Route::Rule => format!("/v1/rules/{}", self.rule_uuid()),
            Route::Unknown => {
                let uuid = self.path_uuid();
                match self.rng.below(16) {
                    0 => "/v1/introspection".to_string(),
                    1 => "/v1/introspection/".to_string(),
                    2 => format!("/v1/introspection/{uuid}/unknown"),
                    3 => format!("/v1/introspection/{uuid}/data/more"),
                    4 => format!("/v1/rules/{uuid}/conditions"),
                    5 => "/v1/continue/more".to_string(),
                    6 => "/v1/nodes".to_string(),
                    7 => "/v2/rules".to_string(),
                    8 => "/favicon.ico".to_string(),
                    9 => "/v1//rules".to_string(),
                    10 => "/v1/rules/".to_string(),
                    11 => "/../../etc/passwd".to_string(),
                    12 => format!("/{}", "a/".repeat(self.rng.log_size(1, 5000))),
                    13 => format!("/{}", "p".repeat(self.rng.log_size(1000, 40_000))),
                    14 => "/v1/%00".to_string(),
                    _ => format!(
                        "/v1/{}",
                        percent_encode(&mutate::long_string_upto(&mut self.rng, 3000))
                    ),
                }
            }
        };
        let query = self.query(route);
        let path = format!("{path}{query}");
        if method == "OPTIONS" && self.rng.one_in(10) {
            return "*".to_string();
        }
        if self.rng.one_in(50) {
            // Absolute form, which HTTP/1.1 servers must accept.
            return format!("http://127.0.0.1:{}{path}", self.world.port);
        }
        path
    }

    /// The body for this route and method: what the endpoint reads, valid or mutated, or
    /// something unrelated; sometimes large, sometimes over the daemon's limit.
    fn body(&mut self, route: Route, method: &str) -> (&'static str, Vec<u8>) {
        let limit = self.world.body_limit;
        let post = method == "POST";
        match (route, post) {
            (Route::Continue, true) => match self.rng.below(100) {
                // A report with an enrolled node's identity is processed in full when that
                // node is under introspection (several Ironic calls, seconds): now and then
                // only, the node walkers send theirs.
                0..=7 => {
                    let node = self.enrolled_identity(3);
                    let index = self.rng.below(self.world.fixtures.len());
                    let report = self.world.report(index, node.as_ref());
                    (
                        "valid report",
                        serde_json::to_vec(&report).unwrap_or_default(),
                    )
                }
                8..=64 => {
                    let node = self.enrolled_identity(5);
                    let index = self.rng.below(self.world.fixtures.len());
                    let mut report = self.world.report(index, node.as_ref());
                    for _ in 0..self.rng.between(1, 3) {
                        mutate::mutate(&mut self.rng, &mut report);
                    }
                    (
                        "mutated report",
                        mutate::to_text(&mut self.rng, &report, 30),
                    )
                }
                65..=74 => {
                    let value = mutate::odd_value(&mut self.rng);
                    (
                        "random JSON",
                        serde_json::to_vec(&value).unwrap_or_default(),
                    )
                }
                75..=84 => self.random_bytes(),
                85..=88 => ("empty", Vec::new()),
                89..=91 => self.large_valid(limit),
                92 | 93 => self.many_macs(limit),
                _ => self.oversized(limit),
            },
            (Route::Rules, true) => match self.rng.below(100) {
                0..=29 => {
                    let rule = self.valid_rule();
                    ("valid rule", serde_json::to_vec(&rule).unwrap_or_default())
                }
                30..=79 => {
                    let mut rule = self.valid_rule();
                    for _ in 0..self.rng.between(1, 3) {
                        mutate::mutate(&mut self.rng, &mut rule);
                    }
                    ("mutated rule", mutate::to_text(&mut self.rng, &rule, 30))
                }
                80..=87 => {
                    let value = mutate::odd_value(&mut self.rng);
                    (
                        "random JSON",
                        serde_json::to_vec(&value).unwrap_or_default(),
                    )
                }
                88..=92 => self.random_bytes(),
                93..=95 => ("empty", Vec::new()),
                _ => self.oversized(limit),
            },
            (Route::Introspection, true) => match self.rng.below(20) {
                0..=13 => ("none", Vec::new()),
                14..=16 => {
                    let uuid = self.rng.pick(&self.world.nodes).uuid.clone();
                    ("valid", json!({ "uuid": uuid }).to_string().into_bytes())
                }
                17 | 18 => self.random_bytes(),
                _ => self.oversized(limit),
            },
            _ => match self.rng.below(100) {
                0..=74 => ("none", Vec::new()),
                75..=89 => self.random_bytes(),
                90..=96 => {
                    let len = self.rng.log_size(1025, 65536);
                    ("random bytes", self.rng.bytes(len))
                }
                _ => self.oversized(limit),
            },
        }
    }

    /// One in `n` times an enrolled node (whose report the daemon looks up and may
    /// process), otherwise none (the fixtures' own identity, which no node has).
    fn enrolled_identity(&mut self, n: usize) -> Option<RealNode> {
        self.rng
            .one_in(n)
            .then(|| self.rng.pick(&self.world.nodes).clone())
    }

    fn random_bytes(&mut self) -> (&'static str, Vec<u8>) {
        let len = self.rng.log_size(1, 4096);
        ("random bytes", self.rng.bytes(len))
    }

    /// A valid report just under the body limit (a long `logs` field).
    fn large_valid(&mut self, limit: usize) -> (&'static str, Vec<u8>) {
        let node = self.enrolled_identity(4);
        let mut report = self.world.report(0, node.as_ref());
        let size = self.rng.between(limit / 4, limit - 1024);
        report["logs"] = Value::String("QUFB".repeat(size / 4));
        (
            "large report",
            serde_json::to_vec(&report).unwrap_or_default(),
        )
    }

    /// A flat report with many interfaces, each with a MAC of its own (up to what fits in
    /// the body limit), and now and then an enrolled node's among them.
    fn many_macs(&mut self, limit: usize) -> (&'static str, Vec<u8>) {
        let node = self.enrolled_identity(4);
        let mut report = self.world.report(0, node.as_ref());
        let count = self.rng.log_size(2, limit / 80);
        let base = self.rng.next_u64() as u32;
        let interfaces = report["interfaces"].as_object_mut();
        if let Some(interfaces) = interfaces {
            for i in 0..count as u32 {
                let n = base.wrapping_add(i);
                interfaces.insert(
                    format!("nic{i}"),
                    json!({
                        "mac": mac_of(n),
                        "ip": format!("10.{}.{}.{}", (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff),
                    }),
                );
            }
        }
        (
            "many-MAC report",
            serde_json::to_vec(&report).unwrap_or_default(),
        )
    }

    /// A body over the daemon's limit.
    fn oversized(&mut self, limit: usize) -> (&'static str, Vec<u8>) {
        let len = self.rng.between(limit + 1, limit * 4);
        let mut body = b"{\"logs\": \"".to_vec();
        body.resize(len, b'A');
        ("oversized", body)
    }

    /// A rule the API accepts: conditions on fields the reports have, actions on the
    /// node's `extra` and capabilities (and now and then one that fails introspection).
    fn valid_rule(&mut self) -> Value {
        let mut conditions = Vec::new();
        for _ in 0..self.rng.below(4) {
            let condition = match self.rng.below(5) {
                0 => {
                    json!({"op": "in-net", "field": self.rng.pick(&["ipmi_address", "interfaces.eth0.ip"]),
                            "value": self.rng.pick(&["192.0.2.0/24", "10.0.0.0/8", "2001:db8::/32"])})
                }
                _ => {
                    let op = *self.rng.pick(&["eq", "ne", "lt", "gt", "le", "ge"]);
                    let (field, value) = match self.rng.below(6) {
                        0 => ("memory_mb", json!(self.rng.pick(&[8192, 16384, 131_072]))),
                        1 => ("cpus", json!(self.rng.between(1, 64))),
                        2 => ("$.local_gb", json!(self.rng.pick(&[100.5, 464.0, 10.0]))),
                        3 => ("cpu_arch", json!("x86_64")),
                        4 => ("inventory.disks[0].size", json!(500_107_862_016u64)),
                        _ => ("interfaces.*.mac", json!("52:54:00:00:00:01")),
                    };
                    let mut condition = json!({"op": op, "field": field, "value": value});
                    if self.rng.one_in(3) {
                        condition["multiple"] = json!(self.rng.pick(&["any", "all", "first"]));
                    }
                    condition
                }
            };
            conditions.push(condition);
        }
        let mut actions = Vec::new();
        for _ in 0..self.rng.between(1, 3) {
            let n = self.rng.below(5);
            let action = match self.rng.below(10) {
                0..=2 => json!({"action": "set-attribute", "path": format!("/extra/fuzz_{n}"),
                                "value": self.rng.pick(&[json!("v"), json!(1), json!({"a": [1, 2]})])}),
                3..=5 => {
                    json!({"action": "set-capability", "name": format!("fuzz_{n}"), "value": "yes"})
                }
                6 | 7 => json!({"action": "extend-attribute", "path": "/extra/fuzz_list",
                                "value": format!("item{n}"), "unique": self.rng.one_in(2)}),
                8 => json!({"action": "example"}),
                _ => json!({"action": "fail", "message": "refused by a fuzz rule"}),
            };
            actions.push(action);
        }
        let mut rule = json!({"conditions": conditions, "actions": actions});
        if self.rng.one_in(2) {
            rule["description"] = json!(*self.rng.pick(&["fuzz rule", "règle 🦀", ""]));
        }
        if self.rng.one_in(5) {
            rule["uuid"] = json!(random_uuid(&mut self.rng));
        } else if self.rng.one_in(10)
            && let Some(existing) = self.rules.first()
        {
            rule["uuid"] = json!(existing);
        }
        rule
    }

    /// Requests that are not valid HTTP/1.1: the HTTP layer refuses them.
    fn malformed(&mut self) -> Request {
        let host = format!("Host: 127.0.0.1:{}\r\n", self.world.port);
        let head: Vec<u8> = match self.rng.below(10) {
            0 => format!("GET / HTTP/1.1\r\n{host}Content-Length: abc\r\n\r\n").into_bytes(),
            1 => format!(
                "POST /v1/rules HTTP/1.1\r\n{host}Content-Length: 2\r\nContent-Length: 3\r\n\r\n{{}}"
            )
            .into_bytes(),
            2 => format!("POST /v1/rules HTTP/1.1\r\n{host}Content-Length: +2\r\n\r\n{{}}")
                .into_bytes(),
            3 => format!("POST /v1/continue HTTP/1.1\r\n{host}Transfer-Encoding: gzip\r\n\r\n{{}}")
                .into_bytes(),
            4 => {
                let mut head = format!("GET / HTTP/1.1\r\n{host}");
                for i in 0..self.rng.between(101, 300) {
                    let _ = write!(head, "X-Many-{i}: {i}\r\n");
                }
                head.push_str("\r\n");
                head.into_bytes()
            }
            5 => {
                let len = self.rng.between(450_000, 600_000);
                format!("GET / HTTP/1.1\r\n{host}X-Huge: {}\r\n\r\n", "h".repeat(len)).into_bytes()
            }
            6 => format!("GET /v1/rules/a b HTTP/1.1\r\n{host}\r\n").into_bytes(),
            7 => {
                let mut head = format!("GET / HTTP/1.1\r\n{host}X-Nul: a").into_bytes();
                head.extend_from_slice(b"\0b\r\n\r\n");
                head
            }
            8 => format!("GET / HTTP/1.2\r\n{host}\r\n").into_bytes(),
            _ => format!("GET /{} HTTP/1.1\r\n{host}\r\n", "u".repeat(70_000)).into_bytes(),
        };
        Request {
            wire: WireRequest {
                head,
                ..WireRequest::default()
            },
            route: Route::Unknown,
            method: "<malformed>".to_string(),
            body_kind: "none",
            body_len: 0,
            framing: "malformed",
            malformed_http: true,
            flow: None,
        }
    }

    /// Headers, framing and the request line around `body`.
    fn assemble(
        &mut self,
        route: Route,
        method: String,
        target: String,
        body_kind: &'static str,
        body: Vec<u8>,
        flow: Option<Flow>,
    ) -> Request {
        let rng = &mut self.rng;
        // The own node's requests are sent as a ramdisk or Ironic would send them, so that
        // they reach processing; only their framing varies.
        let sane = flow.is_some();
        let http10 = !sane && rng.one_in(40);
        let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
        let host = format!("127.0.0.1:{}", self.world.port);
        match if sane { 99 } else { rng.below(100) } {
            0 | 1 => {}
            2 | 3 => headers.push((
                "Host".into(),
                rng.pick(&[
                    "",
                    "[::1]",
                    "evil.example.com:1",
                    "a b",
                    "inspector.example.org",
                ])
                .as_bytes()
                .to_vec(),
            )),
            4 => {
                headers.push(("Host".into(), host.clone().into_bytes()));
                headers.push(("Host".into(), b"other.example.org".to_vec()));
            }
            5 => headers.push((
                "Host".into(),
                "h".repeat(rng.log_size(100, 8000)).into_bytes(),
            )),
            6 => headers.push(("Host".into(), vec![b'h', 0xc3, 0xa9, 0xff])),
            _ => headers.push(("Host".into(), host.into_bytes())),
        }
        if !sane {
            // The API version header: absent, valid, or anything else.
            let version: Option<Vec<u8>> = match rng.below(100) {
                0..=44 => None,
                45..=79 => Some(rng.pick(&["1.0", "1.1", "1.2"]).as_bytes().to_vec()),
                80..=84 => Some(vec![b'1', b'.', 0xff]),
                85 => Some("9".repeat(rng.log_size(10, 8000)).into_bytes()),
                _ => Some(
                    rng.pick(&[
                        "1.3",
                        "2.0",
                        "0.9",
                        "1",
                        "1.2.3",
                        "abc",
                        "",
                        "1.",
                        "+1.+2",
                        " 1.1 ",
                        "-1.0",
                        "1.-0",
                        "99999999999999999999.0",
                        "1.99999999999999999999",
                        "１.２",
                        "1.2, 1.1",
                        "1..2",
                        "latest",
                    ])
                    .as_bytes()
                    .to_vec(),
                ),
            };
            if let Some(version) = version {
                let name = match rng.below(3) {
                    0 => VERSION_HEADER.to_ascii_lowercase(),
                    1 => VERSION_HEADER.to_ascii_uppercase(),
                    _ => VERSION_HEADER.to_string(),
                };
                headers.push((name, version));
                if rng.one_in(30) {
                    headers.push((VERSION_HEADER.to_string(), b"1.3".to_vec()));
                }
            }
        }
        let content_type: Option<&str> = if body.is_empty() && rng.percent(95) {
            None
        } else {
            match rng.below(100) {
                0..=59 => Some("application/json"),
                60..=74 => None,
                _ => Some(*rng.pick(&[
                    "text/plain",
                    "application/json; charset=latin1",
                    "application/json; charset=utf-16",
                    "multipart/form-data; boundary=x",
                    "application/x-www-form-urlencoded",
                    "garbage",
                    "",
                    "application/json, application/json",
                ])),
            }
        };
        if let Some(ct) = content_type {
            headers.push(("Content-Type".into(), ct.as_bytes().to_vec()));
        }
        if rng.one_in(5) {
            headers.push((
                "Accept".into(),
                rng.pick(&[
                    "*/*",
                    "application/json",
                    "text/html",
                    "",
                    "application/xml;q=0.9",
                ])
                .as_bytes()
                .to_vec(),
            ));
        }
        if rng.one_in(10) {
            let token = match rng.below(3) {
                0 => "notused".to_string(),
                1 => "t".repeat(rng.log_size(1, 10_000)),
                _ => String::new(),
            };
            headers.push(("X-Auth-Token".into(), token.into_bytes()));
        }
        if rng.one_in(10) {
            let (name, value) = *rng.pick(&[
                ("User-Agent", "fuzz/1.0"),
                ("Accept-Encoding", "gzip, br"),
                ("Content-Encoding", "gzip"),
                ("Cookie", "a=b; c=d"),
                ("Range", "bytes=0-1"),
                ("If-None-Match", "*"),
                ("Origin", "http://evil.example.com"),
                ("Authorization", "Basic Zm9vOmJhcg=="),
                ("X-Forwarded-For", "192.0.2.1, 198.51.100.2"),
                ("Upgrade", "websocket"),
                ("TE", "trailers"),
            ]);
            headers.push((name.into(), value.as_bytes().to_vec()));
        }
        // Big headers, within what the HTTP layer accepts.
        if rng.one_in(50) {
            let len = rng.log_size(4096, 200_000);
            headers.push(("X-Big".into(), "b".repeat(len).into_bytes()));
        }
        if rng.one_in(80) {
            for i in 0..rng.between(20, 90) {
                headers.push((format!("X-Many-{i}"), format!("value {i}").into_bytes()));
            }
        }

        // Connection management.
        let mut client_close = false;
        let connection = match rng.below(100) {
            0..=4 => Some("keep-alive"),
            5..=7 => Some("close"),
            8 => Some(*rng.pick(&["foo, close", "Upgrade", "keep-alive, Upgrade", "CLOSE"])),
            _ => None,
        };
        if let Some(connection) = connection {
            client_close = connection.to_ascii_lowercase().contains("close");
            headers.push(("Connection".into(), connection.as_bytes().to_vec()));
        }
        if http10 {
            let keep_alive = connection.is_some_and(|c| c.contains("keep-alive"));
            client_close = client_close || !keep_alive;
        }

        // Framing of the body.
        let body_len = body.len();
        let mut framed = body.clone();
        let mut half_close = false;
        let framing: &'static str = if sane && !body.is_empty() {
            if rng.one_in(5) {
                headers.push(("Transfer-Encoding".into(), b"chunked".to_vec()));
                framed = chunked(rng, &body);
                "chunked"
            } else {
                headers.push(("Content-Length".into(), body.len().to_string().into_bytes()));
                "length"
            }
        } else if body.is_empty() {
            match rng.below(100) {
                0..=84 => "none",
                85..=94 => {
                    headers.push(("Content-Length".into(), b"0".to_vec()));
                    "length"
                }
                _ if !http10 => {
                    headers.push(("Transfer-Encoding".into(), b"chunked".to_vec()));
                    framed = b"0\r\n\r\n".to_vec();
                    "chunked"
                }
                _ => "none",
            }
        } else {
            match rng.below(100) {
                0..=79 => {
                    headers.push(("Content-Length".into(), body.len().to_string().into_bytes()));
                    "length"
                }
                80..=89 if !http10 => {
                    headers.push((
                        "Transfer-Encoding".into(),
                        rng.pick(&["chunked", "Chunked", "gzip, chunked"])
                            .as_bytes()
                            .to_vec(),
                    ));
                    framed = chunked(rng, &body);
                    "chunked"
                }
                90 | 91 => {
                    let len = body.len().to_string().into_bytes();
                    headers.push(("Content-Length".into(), len.clone()));
                    headers.push(("Content-Length".into(), len));
                    "length twice"
                }
                92 | 93 => {
                    headers.push((
                        "Content-Length".into(),
                        format!("  {}  ", body.len()).into_bytes(),
                    ));
                    "length with blanks"
                }
                94..=96 => {
                    // Truncated: the head promises more than is sent, then the sending side
                    // is shut down.
                    let promised = body.len() + rng.log_size(1, 100_000);
                    headers.push(("Content-Length".into(), promised.to_string().into_bytes()));
                    half_close = true;
                    client_close = true;
                    "truncated"
                }
                97 | 98 if !http10 => {
                    headers.push(("Transfer-Encoding".into(), b"chunked".to_vec()));
                    headers.push(("Content-Length".into(), body.len().to_string().into_bytes()));
                    framed = chunked(rng, &body);
                    "chunked and length"
                }
                _ => {
                    headers.push(("Content-Length".into(), body.len().to_string().into_bytes()));
                    "length"
                }
            }
        };
        let expect_continue = !framed.is_empty() && !half_close && !http10 && rng.one_in(15);
        if expect_continue {
            headers.push(("Expect".into(), b"100-continue".to_vec()));
        } else if rng.one_in(200) {
            headers.push(("Expect".into(), b"something-else".to_vec()));
        }
        // Header order is free.
        for i in (1..headers.len()).rev() {
            if rng.one_in(3) {
                let j = rng.below(i + 1);
                headers.swap(i, j);
            }
        }

        let version = if http10 { "HTTP/1.0" } else { "HTTP/1.1" };
        let mut head = format!("{method} {target} {version}\r\n").into_bytes();
        for (name, value) in &headers {
            head.extend_from_slice(name.as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value);
            head.extend_from_slice(b"\r\n");
        }
        head.extend_from_slice(b"\r\n");
        Request {
            wire: WireRequest {
                head,
                body: framed,
                expect_continue,
                half_close,
                is_head: method == "HEAD",
                client_close,
            },
            route,
            method,
            body_kind,
            body_len,
            framing,
            malformed_http: false,
            flow,
        }
    }
}

/// `body` in chunks of random sizes, with chunk extensions and trailers now and then.
fn chunked(rng: &mut Rng, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let size = rng.log_size(1, rest.len().max(1)).min(rest.len());
        let (chunk, tail) = rest.split_at(size);
        let size_text = if rng.one_in(5) {
            format!("{size:X}")
        } else {
            format!("{size:x}")
        };
        out.extend_from_slice(size_text.as_bytes());
        if rng.one_in(10) {
            out.extend_from_slice(b";ext=\"v\"");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
        rest = tail;
    }
    out.extend_from_slice(b"0\r\n");
    if rng.one_in(10) {
        out.extend_from_slice(b"X-Trailer: yes\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// A locally administered MAC made of `n`.
fn mac_of(n: u32) -> String {
    let [a, b, c, d] = n.to_be_bytes();
    format!("02:{a:02x}:{b:02x}:{c:02x}:{d:02x}:01")
}

pub fn random_uuid(rng: &mut Rng) -> String {
    let a = rng.next_u64();
    let b = rng.next_u64();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | (b >> 48) & 0x3fff,
        b & 0xffff_ffff_ffff
    )
}

/// Percent-encodes everything but unreserved characters.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

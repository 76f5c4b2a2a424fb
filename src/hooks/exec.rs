//! `exec:/absolute/path`: a hook that is an external program, written in any language.
//!
//! Ours: upstream loaded Python entry points, which a compiled daemon cannot. The protocol
//! is described for operators in `PLUGINS.md`; in short, the program is started once per
//! call with the stage (`before_processing`, `before_update`, `node_not_found`) as its only
//! argument, reads one JSON document on standard input and writes one JSON document (or
//! nothing) on standard output. Exit status 0 is success; any other status is the hook's
//! failure, with the last line of standard error as its message.
//!
//! What the program is given: an empty environment but for [`PATH`] and [`LANG`] (so the
//! daemon's own variables, among them systemd's notification socket, never reach it), `/`
//! as its working directory, and a process group of its own. The group is killed when the
//! call ends, whichever way it ends (timeout, oversized output, the request dropped, or a
//! normal exit that left background processes behind), so a hook leaves no orphans.
//!
//! Everything the program answers is parsed and checked before any of it is applied, and
//! every problem (no JSON, a wrong shape, too much output, a timeout) is a
//! [`Error::BadRequest`], the same kind of failure as a built-in hook's; never a panic.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use super::{LoadError, NodeNotFoundHook, ProcessingHook};
use crate::data::IntrospectionData;
use crate::error::{Error, Result};
use crate::ironic_node::IronicNode;
use crate::mac::Mac;

/// How a configured hook entry names an external program.
pub const EXEC_PREFIX: &str = "exec:";
/// The largest answer read from a program's standard output (16 MiB, as large as the
/// biggest report the API accepts by default). More is a failure.
pub const MAX_OUTPUT: usize = 16 * 1024 * 1024;
/// How much of the end of a program's standard error is kept for the log.
pub const MAX_STDERR_LOGGED: usize = 64 * 1024;
/// The longest failure message taken from standard error, in characters.
pub const MAX_MESSAGE: usize = 1000;
/// The one variable besides [`LANG`] a program gets: a fixed search path.
pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// The program's locale: UTF-8 text, no locale files needed.
pub const LANG: &str = "C.UTF-8";

/// Where in processing a program is called; its first argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Before the node lookup: may replace the data.
    BeforeProcessing,
    /// After the node was found and its ports created: may replace the data and patch the
    /// node and its ports.
    BeforeUpdate,
    /// No node under introspection matched: may name one.
    NodeNotFound,
}

impl Stage {
    /// The argument the program gets.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::BeforeProcessing => "before_processing",
            Stage::BeforeUpdate => "before_update",
            Stage::NodeNotFound => "node_not_found",
        }
    }
}

/// An external program enabled as a processing hook or as the node-not-found hook.
#[derive(Clone, Debug)]
pub struct ExecHook {
    /// The entry as configured (`exec:/path`), the name failures are reported under.
    name: String,
    path: PathBuf,
    timeout: Duration,
}

/// What a program answered, checked against what its stage allows.
#[derive(Debug, Default, PartialEq)]
pub struct Answer {
    /// New introspection data, replacing the old whole.
    pub data: Option<Map<String, Value>>,
    /// A JSON patch for the node (`before_update` only).
    pub node_patches: Vec<Value>,
    /// JSON patches for the node's ports, by MAC (`before_update` only).
    pub port_patches: Vec<(Mac, Vec<Value>)>,
    /// The node to process the data for (`node_not_found` only); `None` when not named.
    pub uuid: Option<String>,
}

/// Whether a configured hook name is an external program.
pub fn is_exec(name: &str) -> bool {
    name.starts_with(EXEC_PREFIX)
}

impl ExecHook {
    /// The hook for the entry `exec:/path` of `option`, once the path is checked: it must
    /// be absolute and name an existing regular file the daemon may execute.
    ///
    /// # Errors
    /// [`LoadError::Exec`] naming the option, the path and what is wrong.
    pub fn new(option: &'static str, entry: &str, timeout: Duration) -> Result<Self, LoadError> {
        let raw = entry.strip_prefix(EXEC_PREFIX).unwrap_or(entry).trim();
        let refuse = |problem: String| LoadError::Exec {
            option,
            entry: entry.to_string(),
            problem,
        };
        let path = Path::new(raw);
        if !path.is_absolute() {
            return Err(refuse(format!("{raw:?} is not an absolute path")));
        }
        let meta = std::fs::metadata(path).map_err(|e| refuse(format!("cannot use {raw}: {e}")))?;
        if !meta.is_file() {
            return Err(refuse(format!("{raw} is not a regular file")));
        }
        if rustix::fs::access(path, rustix::fs::Access::EXEC_OK).is_err()
            || meta.permissions().mode() & 0o111 == 0
        {
            return Err(refuse(format!(
                "{raw} is not executable by the daemon (mode {:o}); chmod 755 it",
                meta.permissions().mode() & 0o7777
            )));
        }
        Ok(ExecHook {
            name: format!("{EXEC_PREFIX}{raw}"),
            path: path.to_path_buf(),
            timeout,
        })
    }

    /// Runs the program for `stage` with `input` on its standard input, and checks its
    /// answer; a failure is the message for the operator.
    async fn call(&self, stage: Stage, input: &Value) -> std::result::Result<Answer, String> {
        let input =
            serde_json::to_vec(input).map_err(|e| format!("cannot encode the input: {e}"))?;
        let started = std::time::Instant::now();
        let output = run(&self.name, &self.path, stage, &input, self.timeout).await;
        let output = output.inspect_err(|problem| {
            tracing::warn!(hook.name = %self.name, hook.stage = stage.as_str(), error = %problem, "external hook failed");
        })?;
        tracing::debug!(
            hook.name = %self.name,
            hook.stage = stage.as_str(),
            duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "external hook done"
        );
        parse_answer(stage, &output).inspect_err(|problem| {
            tracing::warn!(hook.name = %self.name, hook.stage = stage.as_str(), error = %problem, "external hook answered badly");
        })
    }

    /// A failure after the lookup, where the pipeline does not name the hook: named here.
    fn failed(&self, problem: impl std::fmt::Display) -> Error {
        Error::BadRequest(format!("Hook {}: {problem}", self.name))
    }
}

#[async_trait]
impl ProcessingHook for ExecHook {
    fn name(&self) -> &str {
        &self.name
    }

    async fn before_processing(&self, data: &mut IntrospectionData) -> Result<()> {
        // The pipeline reports this stage's failures as `Preprocessing hook <name>: ...`.
        let answer = self
            .call(Stage::BeforeProcessing, &json!({"data": data.as_map()}))
            .await
            .map_err(Error::BadRequest)?;
        if let Some(new) = answer.data {
            *data = IntrospectionData::from_map_unchecked(new);
        }
        Ok(())
    }

    async fn before_update(
        &self,
        data: &mut IntrospectionData,
        node: &mut IronicNode,
    ) -> Result<()> {
        let ports: Vec<Value> = node
            .ports()
            .values()
            .map(|port| {
                json!({
                    "uuid": port.uuid,
                    "address": port.address,
                    "node_uuid": port.node_uuid,
                    "extra": port.extra,
                })
            })
            .collect();
        let input = json!({"data": data.as_map(), "node": node.node().raw, "ports": ports});
        let answer = self
            .call(Stage::BeforeUpdate, &input)
            .await
            .map_err(|problem| self.failed(problem))?;
        // Checked before anything changes, so a wrong MAC leaves the node as it was.
        if let Some((mac, _)) = answer
            .port_patches
            .iter()
            .find(|(mac, _)| !node.ports().contains_key(mac))
        {
            return Err(self.failed(format_args!(
                "answered port_patches for {mac}, which is not a port of node {}",
                node.uuid
            )));
        }
        if let Some(new) = answer.data {
            *data = IntrospectionData::from_map_unchecked(new);
        }
        // Ironic refusing a patch is the hook's failure; Ironic being away stays what it is
        // (the ramdisk is asked to post again).
        let refused = |err: Error| match err {
            Error::BadRequest(message) => {
                self.failed(format_args!("Ironic refused its patch: {message}"))
            }
            other => other,
        };
        node.patch(&answer.node_patches).await.map_err(refused)?;
        for (mac, ops) in &answer.port_patches {
            node.patch_port(mac, ops).await.map_err(refused)?;
        }
        Ok(())
    }
}

#[async_trait]
impl NodeNotFoundHook for ExecHook {
    fn name(&self) -> &str {
        &self.name
    }

    async fn run(&self, data: &mut IntrospectionData) -> Result<Option<String>> {
        // The pipeline reports this as `Node not found hook failed: ...`.
        let answer = self
            .call(Stage::NodeNotFound, &json!({"data": data.as_map()}))
            .await
            .map_err(Error::BadRequest)?;
        if let Some(new) = answer.data {
            *data = IntrospectionData::from_map_unchecked(new);
        }
        Ok(answer.uuid)
    }
}

/// The program's process group, killed when dropped: the program and whatever it started.
struct Group {
    pgid: Option<rustix::process::Pid>,
    /// Set once the group was killed after its leader was collected: its id may then be
    /// taken by a new process, so it is not signalled again.
    done: AtomicBool,
}

impl Group {
    fn kill(&self) {
        if let Some(pgid) = self.pgid
            && !self.done.load(Ordering::Acquire)
        {
            // ESRCH (the group is gone already) is the usual answer and means nothing.
            let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
        }
    }

    /// The last kill, right after the leader was collected.
    fn kill_once_more(&self) {
        self.kill();
        self.done.store(true, Ordering::Release);
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs the program; its standard output when it exits with status 0, else the failure
/// message for the operator.
async fn run(
    name: &str,
    path: &Path,
    stage: Stage,
    input: &[u8],
    timeout: Duration,
) -> std::result::Result<Vec<u8>, String> {
    let mut command = Command::new(path);
    command
        .arg(stage.as_str())
        .env_clear()
        .env("PATH", PATH)
        .env("LANG", LANG)
        .current_dir("/")
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", path.display()))?;
    // The child leads its own group (process_group(0)): its pid is the group's id.
    let group = Group {
        pgid: child
            .id()
            .and_then(|pid| i32::try_from(pid).ok())
            .and_then(rustix::process::Pid::from_raw),
        done: AtomicBool::new(false),
    };
    let (Some(mut stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err("cannot talk to the program: its pipes are missing".to_string());
    };
    let write = async move {
        // A program that does not read its input closes the pipe: that is its business,
        // its exit status says whether it worked.
        let _ = stdin.write_all(input).await;
        drop(stdin);
    };
    let read_out = async {
        let mut out = Vec::new();
        let read = stdout
            .take(MAX_OUTPUT as u64 + 1)
            .read_to_end(&mut out)
            .await;
        if out.len() > MAX_OUTPUT {
            // It would block writing the rest; stop it now rather than at the timeout.
            group.kill();
        }
        read.map(|_| out)
    };
    let read_err = read_tail(stderr, MAX_STDERR_LOGGED);
    let wait = async {
        let status = child.wait().await;
        // Background processes it left would keep the pipes open.
        group.kill_once_more();
        status
    };
    let all = async { tokio::join!(write, read_out, read_err, wait) };
    let Ok(((), out, err, status)) = tokio::time::timeout(timeout, all).await else {
        // Dropping `group` (and `child`) kills the program and everything it started.
        return Err(format!("timed out after {} s; killed", timeout.as_secs()));
    };
    let err = err.unwrap_or_default();
    let status = status.map_err(|e| format!("cannot wait for the program: {e}"))?;
    let out = out.map_err(|e| format!("cannot read the program's output: {e}"))?;
    let (earlier, last) = split_last_line(&err);
    if !earlier.is_empty() || (status.success() && !last.is_empty()) {
        let logged = if status.success() { &err[..] } else { earlier };
        tracing::warn!(
            hook.name = %name,
            hook.stage = stage.as_str(),
            hook.stderr = %String::from_utf8_lossy(logged).trim_end(),
            "external hook wrote to standard error"
        );
    }
    if out.len() > MAX_OUTPUT {
        return Err(format!(
            "answered more than {} MiB on standard output",
            MAX_OUTPUT / (1024 * 1024)
        ));
    }
    if !status.success() {
        return Err(failure_message(status, last));
    }
    Ok(out)
}

/// Reads everything, keeping the last `keep` bytes (or a little more).
async fn read_tail(mut from: impl AsyncRead + Unpin, keep: usize) -> std::io::Result<Vec<u8>> {
    let mut tail = Vec::new();
    let mut chunk = vec![0u8; 8192];
    loop {
        let n = from.read(&mut chunk).await?;
        if n == 0 {
            return Ok(tail);
        }
        tail.extend_from_slice(chunk.get(..n).unwrap_or_default());
        if tail.len() > 2 * keep {
            tail.drain(..tail.len() - keep);
        }
    }
}

/// Standard error split into what comes before its last non-blank line, and that line.
fn split_last_line(err: &[u8]) -> (&[u8], String) {
    let trimmed = err.trim_ascii_end();
    let start = trimmed
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    let (earlier, last) = trimmed.split_at(start);
    let last: String = String::from_utf8_lossy(last)
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_MESSAGE)
        .collect();
    (earlier, last)
}

/// The failure message of a program that did not exit with status 0.
fn failure_message(status: ExitStatus, last_line: String) -> String {
    if !last_line.is_empty() {
        return last_line;
    }
    match (
        status.code(),
        std::os::unix::process::ExitStatusExt::signal(&status),
    ) {
        (Some(code), _) => format!("exited with status {code} and no message on standard error"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => format!("failed ({status})"),
    }
}

/// Checks a program's standard output against what `stage` allows. Blank output is no
/// change.
pub fn parse_answer(stage: Stage, output: &[u8]) -> std::result::Result<Answer, String> {
    if output.len() > MAX_OUTPUT {
        return Err(format!(
            "answered more than {} MiB on standard output",
            MAX_OUTPUT / (1024 * 1024)
        ));
    }
    if output.trim_ascii().is_empty() {
        return Ok(Answer::default());
    }
    let value: Value = serde_json::from_slice(output)
        .map_err(|e| format!("answered something that is not JSON on standard output ({e})"))?;
    let Value::Object(fields) = value else {
        return Err(format!(
            "answered JSON that is not an object on standard output (a {})",
            kind(&value)
        ));
    };
    let allowed: &[&str] = match stage {
        Stage::BeforeProcessing => &["data"],
        Stage::BeforeUpdate => &["data", "node_patches", "port_patches"],
        Stage::NodeNotFound => &["uuid", "data"],
    };
    if let Some(key) = fields.keys().find(|key| !allowed.contains(&key.as_str())) {
        return Err(format!(
            "answered the key {key:?}, which {} does not take (it takes: {})",
            stage.as_str(),
            allowed.join(", ")
        ));
    }
    let mut answer = Answer::default();
    for (key, value) in fields {
        match (key.as_str(), value) {
            ("data", Value::Object(data)) => answer.data = Some(data),
            ("node_patches", Value::Array(ops)) => answer.node_patches = check_patch(&key, ops)?,
            ("port_patches", Value::Object(by_mac)) => {
                for (mac, ops) in by_mac {
                    let parsed = Mac::parse(&mac)
                        .map_err(|_| format!("answered port_patches for {mac:?}, not a MAC"))?;
                    let Value::Array(ops) = ops else {
                        return Err(format!(
                            "answered port_patches for {mac} that are not a list of patch \
                             operations"
                        ));
                    };
                    let ops = check_patch(&format!("port_patches for {mac}"), ops)?;
                    answer.port_patches.push((parsed, ops));
                }
            }
            ("uuid", Value::Null) => {}
            ("uuid", Value::String(text)) => {
                let uuid = uuid::Uuid::parse_str(text.trim())
                    .map_err(|_| format!("answered uuid {text:?}, which is not a UUID"))?;
                answer.uuid = Some(uuid.hyphenated().to_string());
            }
            (key, other) => {
                return Err(format!(
                    "answered {key} as a {}, not {}",
                    kind(&other),
                    match key {
                        "data" | "port_patches" => "an object",
                        "uuid" => "a string",
                        _ => "a list of patch operations",
                    }
                ));
            }
        }
    }
    Ok(answer)
}

/// A list of JSON patch operations: each an object with string `op` and `path`. Ironic
/// judges the rest.
fn check_patch(what: &str, ops: Vec<Value>) -> std::result::Result<Vec<Value>, String> {
    for op in &ops {
        let ok = op.get("op").is_some_and(Value::is_string)
            && op.get("path").is_some_and(Value::is_string);
        if !ok {
            return Err(format!(
                "answered {what} with an entry that is not a patch operation (an object with \
                 string op and path)"
            ));
        }
    }
    Ok(ops)
}

/// The JSON kind of a value, for messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// An executable `/bin/sh` script with `body` in `dir`.
    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn hook(path: &Path, timeout: Duration) -> ExecHook {
        ExecHook::new(
            "[processing] processing_hooks",
            &format!("exec:{}", path.display()),
            timeout,
        )
        .unwrap()
    }

    fn parse(stage: Stage, text: &str) -> std::result::Result<Answer, String> {
        parse_answer(stage, text.as_bytes())
    }

    #[test]
    fn blank_output_is_no_change() {
        for text in ["", " \n\t\n"] {
            assert_eq!(parse(Stage::BeforeUpdate, text).unwrap(), Answer::default());
        }
    }

    #[test]
    fn data_and_patches_may_come_together() {
        let answer = parse(
            Stage::BeforeUpdate,
            r#"{"data": {"cpus": 2},
                "node_patches": [{"op": "add", "path": "/extra/a", "value": 1}],
                "port_patches": {"AA:bb:cc:dd:ee:ff": [{"op": "add", "path": "/extra/b", "value": 2}]}}"#,
        )
        .unwrap();
        assert_eq!(answer.data.unwrap()["cpus"], 2);
        assert_eq!(answer.node_patches.len(), 1);
        assert_eq!(answer.port_patches.len(), 1);
        assert_eq!(answer.port_patches[0].0.to_string(), "aa:bb:cc:dd:ee:ff");
    }

    #[test]
    fn not_found_answers_a_normalised_uuid_or_nothing() {
        let answer = parse(
            Stage::NodeNotFound,
            r#"{"uuid": "2C8F1B1E-7A65-4C43-9F0B-0C1B1D8E6A11"}"#,
        )
        .unwrap();
        assert_eq!(
            answer.uuid.as_deref(),
            Some("2c8f1b1e-7a65-4c43-9f0b-0c1b1d8e6a11")
        );
        assert_eq!(
            parse(Stage::NodeNotFound, r#"{"uuid": null}"#)
                .unwrap()
                .uuid,
            None
        );
        assert_eq!(parse(Stage::NodeNotFound, "{}").unwrap().uuid, None);
    }

    #[test]
    fn bad_shapes_are_clear_failures() {
        let cases = [
            (Stage::BeforeProcessing, "garbage", "not JSON"),
            (
                Stage::BeforeProcessing,
                "{\"data\": {}} trailing",
                "not JSON",
            ),
            (
                Stage::BeforeProcessing,
                "[1, 2]",
                "not an object on standard output (a list)",
            ),
            (Stage::BeforeProcessing, "\"text\"", "(a string)"),
            (
                Stage::BeforeProcessing,
                r#"{"node_patches": []}"#,
                "\"node_patches\", which before_processing does not take",
            ),
            (
                Stage::BeforeUpdate,
                r#"{"uuid": "x"}"#,
                "\"uuid\", which before_update does not take",
            ),
            (
                Stage::NodeNotFound,
                r#"{"port_patches": {}}"#,
                "node_not_found does not take",
            ),
            (
                Stage::BeforeUpdate,
                r#"{"data": [1]}"#,
                "answered data as a list, not an object",
            ),
            (
                Stage::BeforeUpdate,
                r#"{"node_patches": {"op": "add"}}"#,
                "node_patches as a object, not a list",
            ),
            (
                Stage::BeforeUpdate,
                r#"{"node_patches": [1]}"#,
                "not a patch operation",
            ),
            (
                Stage::BeforeUpdate,
                r#"{"node_patches": [{"op": "add"}]}"#,
                "not a patch operation",
            ),
            (
                Stage::BeforeUpdate,
                r#"{"port_patches": {"nope": []}}"#,
                "\"nope\", not a MAC",
            ),
            (
                Stage::BeforeUpdate,
                r#"{"port_patches": {"aa:bb:cc:dd:ee:ff": {}}}"#,
                "not a list of patch operations",
            ),
            (
                Stage::NodeNotFound,
                r#"{"uuid": "node-1"}"#,
                "\"node-1\", which is not a UUID",
            ),
            (
                Stage::NodeNotFound,
                r#"{"uuid": 7}"#,
                "uuid as a number, not a string",
            ),
        ];
        for (stage, text, expected) in cases {
            let err = parse(stage, text).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn output_beyond_the_bound_is_refused() {
        let mut big = b"{\"data\": {\"x\": \"".to_vec();
        big.resize(MAX_OUTPUT + 1, b'a');
        let err = parse_answer(Stage::BeforeProcessing, &big).unwrap_err();
        assert_eq!(err, "answered more than 16 MiB on standard output");
    }

    #[test]
    fn last_stderr_line_is_the_message() {
        let (earlier, last) = split_last_line(b"one\ntwo\n  the reason \n\n");
        assert_eq!(earlier, b"one\ntwo\n");
        assert_eq!(last, "the reason");
        assert_eq!(split_last_line(b"").1, "");
        let long = "x".repeat(5000);
        assert_eq!(split_last_line(long.as_bytes()).1.len(), MAX_MESSAGE);
    }

    #[test]
    fn paths_are_checked_when_loading() {
        let dir = tempfile::tempdir().unwrap();
        let timeout = Duration::from_secs(1);
        let load = |entry: &str| {
            ExecHook::new("[processing] processing_hooks", entry, timeout)
                .unwrap_err()
                .to_string()
        };
        let err = load("exec:hooks/x.sh");
        assert_eq!(
            err,
            "[processing] processing_hooks = exec:hooks/x.sh: \"hooks/x.sh\" is not an \
             absolute path (see PLUGINS.md)"
        );
        let missing = dir.path().join("missing");
        let err = load(&format!("exec:{}", missing.display()));
        assert!(err.contains("cannot use"), "{err}");
        assert!(err.contains("No such file"), "{err}");
        let err = load(&format!("exec:{}", dir.path().display()));
        assert!(
            err.ends_with("is not a regular file (see PLUGINS.md)"),
            "{err}"
        );
        let plain = script(dir.path(), "plain.sh", "exit 0");
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load(&format!("exec:{}", plain.display()));
        assert!(
            err.contains(&format!(
                "{} is not executable by the daemon (mode 644)",
                plain.display()
            )),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_failing_program_gives_its_last_stderr_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = script(
            dir.path(),
            "fail.sh",
            "cat >/dev/null; echo detail >&2; echo \"no disks in $1\" >&2; exit 3",
        );
        let mut data = IntrospectionData::from_map_unchecked(Map::new());
        let err = hook(&path, Duration::from_secs(30))
            .before_processing(&mut data)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::BadRequest(_)), "{err:?}");
        assert_eq!(err.to_string(), "no disks in before_processing");

        let silent = script(dir.path(), "silent.sh", "exit 4");
        let err = hook(&silent, Duration::from_secs(30))
            .before_processing(&mut data)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "exited with status 4 and no message on standard error"
        );
    }

    #[tokio::test]
    async fn the_program_replaces_the_data_and_sees_a_scrubbed_environment() {
        let dir = tempfile::tempdir().unwrap();
        // Answers its input's data with the environment's names and the working directory.
        let path = script(
            dir.path(),
            "env.sh",
            "cat >/dev/null; printf '{\"data\": {\"env\": \"%s\", \"cwd\": \"%s\"}}' \
             \"$(env | cut -d= -f1 | grep -v '^_$' | grep -v '^PWD$' | grep -v '^SHLVL$' | sort | tr '\\n' ' ')\" \"$(pwd)\"",
        );
        let mut data = IntrospectionData::from_map_unchecked(Map::new());
        data.insert("cpus", json!(4));
        hook(&path, Duration::from_secs(30))
            .before_processing(&mut data)
            .await
            .unwrap();
        assert_eq!(data.get("cpus"), None, "replaced whole");
        assert_eq!(data.get_str("env"), Some("LANG PATH "));
        assert_eq!(data.get_str("cwd"), Some("/"));
    }

    #[tokio::test]
    async fn a_hung_program_and_its_children_are_killed_at_the_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let pids = dir.path().join("pids");
        let path = script(
            dir.path(),
            "hang.sh",
            &format!(
                "sleep 600 & echo $! > {0}.tmp; echo $$ >> {0}.tmp; mv {0}.tmp {0}; wait",
                pids.display()
            ),
        );
        let mut data = IntrospectionData::from_map_unchecked(Map::new());
        let err = hook(&path, Duration::from_secs(5))
            .before_processing(&mut data)
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "timed out after 5 s; killed");
        let pids = std::fs::read_to_string(&pids).unwrap();
        for pid in pids.split_whitespace() {
            // Gone, or a zombie waiting for its parent to collect it.
            let gone = || {
                std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .map_or(true, |stat| stat.contains(") Z "))
            };
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while !gone() && std::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert!(gone(), "process {pid} is still alive");
        }
    }

    #[tokio::test]
    async fn an_endless_answer_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let path = script(dir.path(), "yes.sh", "exec yes");
        let mut data = IntrospectionData::from_map_unchecked(Map::new());
        let err = hook(&path, Duration::from_secs(120))
            .before_processing(&mut data)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "answered more than 16 MiB on standard output"
        );
    }
}

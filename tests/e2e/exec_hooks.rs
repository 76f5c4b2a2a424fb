//! External hooks (`exec:/path`, PLUGINS.md) against the real Ironic: the examples of
//! `examples/hooks/` change the node and the data, a not-found hook names the node, and
//! programs that fail, hang, babble or cannot be run are reported as PLUGINS.md says.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::daemon_binary::{Daemon, dbsync_upgrade};
use crate::helpers::{error_message, wait_for, write_file};
use crate::ironic_api::unique_macs;
use crate::nodes::fixture;
use crate::scene::Scene;

const DEADLINE: Duration = Duration::from_secs(60);

/// An example hook of the repository.
fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/hooks")
        .join(name)
}

/// Writes an executable program to `dir`.
fn program(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = write_file(dir, name, text);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A daemon whose `[processing]` section has `processing` added (data kept in its database).
async fn scene(test: &str, processing: &str) -> Option<Scene> {
    Scene::start(
        test,
        &format!("[processing]\nstore_data = database\n{processing}"),
    )
    .await
}

/// `processing_hooks` with `hook` run after the built-in ones.
fn after_built_ins(hook: &Path) -> String {
    format!(
        "processing_hooks = $default_processing_hooks,exec:{}\n",
        hook.display()
    )
}

/// A node on introspection with no ports, found by its BMC address `bmc`, and the Liberty
/// report for it (its PXE NIC is the first MAC).
async fn reporting_node(s: &Scene, bmc: &str) -> (String, Vec<String>, Value) {
    let macs = unique_macs(2);
    let uuid = s.on_introspection(json!({"ipmi_address": bmc}), &[]).await;
    (uuid, macs.clone(), fixture("liberty-flat.json", &macs, bmc))
}

/// Posts a report that a pre-processing hook fails; the node's error, after checking that
/// the 400 names it too and that Ironic's node was not changed.
async fn failed_preprocessing(s: &Scene, uuid: &str, payload: &Value) -> String {
    let before = s.ironic.node(uuid).await;
    let response = s.post_continue(payload).await;
    let message = error_message(response, 400).await;
    let status = s.introspection_status(uuid).await;
    assert_eq!(status["finished"], true, "{status}");
    let error = status["error"].as_str().unwrap().to_string();
    assert_eq!(
        message,
        format!(
            "The following failures happened during running pre-processing hooks for node \
             {uuid}:\n{error}"
        )
    );
    // Nothing was written to Ironic: no port, no property; the node stays on for an
    // operator to look at, as after any pre-processing failure.
    let after = s.ironic.node(uuid).await;
    assert_eq!(after["properties"], before["properties"]);
    assert_eq!(after["extra"], before["extra"]);
    assert_eq!(after["provision_state"], before["provision_state"]);
    assert!(s.ironic.ports(uuid).await.is_empty());
    error
}

#[tokio::test]
async fn shell_hook_sets_a_node_property() {
    let hook = example("set-property.sh");
    let Some(s) = scene(module_path!(), &after_built_ins(&hook)).await else {
        return;
    };
    let (uuid, macs, payload) = reporting_node(&s, "192.0.2.91").await;
    assert!(
        s.ironic.node(&uuid).await["properties"]
            .get("site")
            .is_none()
    );

    s.report_processed(&uuid, &payload).await;
    let node = s.ironic.node(&uuid).await;
    assert_eq!(node["properties"]["site"], "dc1", "{node}");
    // The built-in hooks ran as well.
    assert_eq!(node["properties"]["cpus"], "4");
    assert_eq!(s.ironic.ports(&uuid).await, vec![macs[0].clone()]);
    s.end().await;
}

#[tokio::test]
async fn python_hook_rewrites_the_data_that_rules_then_see() {
    let hook = example("rewrite_data.py");
    let Some(s) = scene(
        module_path!(),
        &format!(
            "processing_hooks = exec:{},$default_processing_hooks\n",
            hook.display()
        ),
    )
    .await
    else {
        return;
    };
    // Only the hook's field can make this rule match: the ramdisk sends no "rack".
    let rule = json!({
        "description": "Rack 1 machines",
        "conditions": [{"op": "eq", "field": "rack", "value": "rack-1"}],
        "actions": [{"action": "set-attribute", "path": "/extra/rack", "value": "rack-1"}],
    });
    let response = s.post_rule(&rule).await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    let (uuid, _, payload) = reporting_node(&s, "192.0.2.92").await;
    assert!(payload.get("rack").is_none());

    s.report_processed(&uuid, &payload).await;
    assert_eq!(s.ironic.node(&uuid).await["extra"]["rack"], "rack-1");
    let stored = s.stored_data(&uuid).await;
    assert_eq!(stored["rack"], "rack-1");
    assert_eq!(stored["cpus"], 4);
    s.end().await;
}

#[tokio::test]
async fn a_failing_hook_is_the_nodes_error_with_its_last_stderr_line() {
    let dir = tempfile::tempdir().unwrap();
    let hook = program(
        dir.path(),
        "check_raid.py",
        "#!/usr/bin/env python3\nimport json, sys\njson.load(sys.stdin)\n\
         print('looking for a RAID controller', file=sys.stderr)\n\
         print('no RAID controller found', file=sys.stderr)\nsys.exit(2)\n",
    );
    let Some(s) = scene(module_path!(), &after_built_ins(&hook)).await else {
        return;
    };
    let (uuid, _, payload) = reporting_node(&s, "192.0.2.93").await;
    let error = failed_preprocessing(&s, &uuid, &payload).await;
    assert_eq!(
        error,
        format!(
            "Preprocessing hook exec:{}: no RAID controller found",
            hook.display()
        )
    );
    s.end().await;
}

/// Whether a live (not zombie) process runs with `marker` in its command line.
fn running_with(marker: &str) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        let dir = entry.path();
        let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
        let zombie = std::fs::read_to_string(dir.join("stat")).map_or(true, |s| s.contains(") Z "));
        !zombie && String::from_utf8_lossy(&cmdline).contains(marker)
    })
}

#[tokio::test]
async fn a_hung_hook_is_killed_with_its_children_at_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    // A subshell in the background keeps running; the script waits for it.
    let hook = program(
        dir.path(),
        "hang.sh",
        &format!(
            "#!/bin/sh\necho $$ > {0}\n( while :; do sleep 1; done ) &\necho $! >> {0}\nwait\n",
            pids.display()
        ),
    );
    let Some(s) = scene(
        module_path!(),
        &format!("hook_timeout = 5\n{}", after_built_ins(&hook)),
    )
    .await
    else {
        return;
    };
    let (uuid, _, payload) = reporting_node(&s, "192.0.2.94").await;
    let error = failed_preprocessing(&s, &uuid, &payload).await;
    assert_eq!(
        error,
        format!(
            "Preprocessing hook exec:{}: timed out after 5 s; killed",
            hook.display()
        )
    );
    let pids = std::fs::read_to_string(&pids).unwrap();
    assert_eq!(pids.split_whitespace().count(), 2, "{pids}");
    // The script and its background subshell both carry the script's path.
    let marker = hook.display().to_string();
    wait_for(DEADLINE, "the hook's processes to be gone", || async {
        (!running_with(&marker)).then_some(())
    })
    .await;
    s.end().await;
}

#[tokio::test]
async fn a_hook_answering_garbage_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let hook = program(
        dir.path(),
        "garbage.sh",
        "#!/bin/sh\ncat >/dev/null\necho 'this is { not JSON'\n",
    );
    let Some(s) = scene(module_path!(), &after_built_ins(&hook)).await else {
        return;
    };
    let (uuid, _, payload) = reporting_node(&s, "192.0.2.95").await;
    let error = failed_preprocessing(&s, &uuid, &payload).await;
    let prefix = format!(
        "Preprocessing hook exec:{}: answered something that is not JSON on standard output (",
        hook.display()
    );
    assert!(error.starts_with(&prefix), "{error}");
    // The daemon is none the worse.
    assert_eq!(s.get("/", &[]).await.status(), 200);
    s.end().await;
}

#[tokio::test]
async fn python_not_found_hook_names_the_node_for_the_report() {
    let dir = tempfile::tempdir().unwrap();
    // The example reads its table from its own directory.
    let hook = dir.path().join("find_node.py");
    std::fs::copy(example("find_node.py"), &hook).unwrap();
    let Some(s) = scene(
        module_path!(),
        &format!("node_not_found_hook = exec:{}\n", hook.display()),
    )
    .await
    else {
        return;
    };
    // Under introspection with BMC .96; the machine reports .97 and MACs Ironic does not
    // know, so no lookup attribute matches.
    let uuid = s
        .on_introspection(json!({"ipmi_address": "192.0.2.96"}), &[])
        .await;
    let macs = unique_macs(2);
    let payload = fixture("liberty-flat.json", &macs, "192.0.2.97");

    // Not in the table yet: the hook's failure is the lookup's.
    write_file(dir.path(), "nodes.json", "{}");
    let response = s.post_continue(&payload).await;
    let message = error_message(response, 400).await;
    assert_eq!(
        message,
        "The following failures happened during running pre-processing hooks for unknown \
         node:\nNode not found hook failed: no node known for BMC address '192.0.2.97'"
    );
    assert_eq!(s.introspection_status(&uuid).await["finished"], false);

    write_file(
        dir.path(),
        "nodes.json",
        &json!({"192.0.2.97": uuid}).to_string(),
    );
    s.report_processed(&uuid, &payload).await;
    let node = s.ironic.node(&uuid).await;
    assert_eq!(node["properties"]["cpus"], "4", "{node}");
    assert_eq!(s.ironic.ports(&uuid).await, vec![macs[0].clone()]);
    s.end().await;
}

#[tokio::test]
async fn a_hook_that_is_not_executable_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let hook = dir.path().join("set-property.sh");
    std::fs::copy(example("set-property.sh"), &hook).unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o644)).unwrap();
    let url = format!("sqlite:///{}/inspector.sqlite", dir.path().display());
    dbsync_upgrade(dir.path(), &url).await;
    let config = format!(
        "[DEFAULT]\nauth_strategy = noauth\n[ironic]\nauth_strategy = noauth\n\
         [firewall]\nmanage_firewall = false\n[database]\nconnection = {url}\n\
         [processing]\nprocessing_hooks = $default_processing_hooks,exec:{}\n",
        hook.display()
    );
    let (_, stderr) = Daemon::fail_to_start(dir.path(), &config).await;
    let path = hook.display();
    assert!(
        stderr.contains(&format!(
            "[processing] processing_hooks = exec:{path}: {path} is not executable by the \
             daemon (mode 644); chmod 755 it (see PLUGINS.md)"
        )),
        "{stderr}"
    );
}

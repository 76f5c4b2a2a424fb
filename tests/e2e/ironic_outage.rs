//! Ironic down for a minute and back, behind the fault proxy: work in flight ends with an
//! error naming Ironic instead of hanging, statuses are answered throughout, reports are
//! refused with 503 (the ramdisk posts again) and go through afterwards, and the clean-up
//! loop and the firewall refresh, failing while Ironic is away, recover by themselves.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::fault_proxy::{FaultProxy, Match};
use crate::firewall::{CHAIN, INTERFACE, Netns, dropped_by};
use crate::helpers::wait_for;
use crate::ironic_api::{IronicApi, unique_macs};
use crate::ironic_faults::{
    CALL_BOUND, DEADLINE, MARGIN, assert_answer, assert_bounded, assert_introspected, daemon,
    start, waiting_node,
};
use crate::nodes::{liberty_report, managed_node};

/// How long Ironic stays away.
const OUTAGE: Duration = Duration::from_secs(60);
/// The clean-up period of the daemon under test.
const CLEAN_UP_PERIOD: Duration = Duration::from_secs(2);
/// Longest a status request may take while Ironic is away: it does not need Ironic.
const STATUS_BOUND: Duration = Duration::from_secs(5);

#[tokio::test]
async fn ironic_down_for_a_minute_and_back() {
    let Some(ironic) = IronicApi::for_test(module_path!()) else {
        return;
    };
    let proxy = FaultProxy::start(ironic.url()).await;
    // The clean-up loop runs every 2 s; the timeout is far longer than the test.
    let app = daemon(
        &proxy,
        &format!(
            "[DEFAULT]\ntimeout = 3600\nclean_up_period = {}\n",
            CLEAN_UP_PERIOD.as_secs()
        ),
    )
    .await;

    // A node waiting for its ramdisk, whose report will come during the outage; one that
    // Ironic forgets during the outage; one being processed and one being started when
    // Ironic goes away (their power calls are held at the proxy, then cut off).
    let waiting_bmc = "192.0.2.71";
    let waiting = waiting_node(&app, &ironic, waiting_bmc).await;
    let forgotten = waiting_node(&app, &ironic, "192.0.2.72").await;
    let processed_bmc = "192.0.2.73";
    let processed = waiting_node(&app, &ironic, processed_bmc).await;
    let started = managed_node(&ironic, "192.0.2.74").await;

    let power = |uuid: &str| Match::new("PUT", &format!("/v1/nodes/{uuid}/states/power"));
    let mut power_off = proxy.hold(power(&processed));
    let processed_macs = unique_macs(2);
    let response = app
        .post_continue(&liberty_report(&processed_macs, processed_bmc))
        .await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    let held_off = power_off
        .next("the power-off of the processed node", DEADLINE)
        .await;
    let mut reboot = proxy.hold(power(&started));
    assert_eq!(start(&app, &started).await.0.status(), 202);
    let held_reboot = reboot
        .next("the reboot of the started node", DEADLINE)
        .await;

    // Ironic goes away: connections are refused, and those under way are cut.
    proxy.go_down().await;
    let down_at = Instant::now();
    drop((held_off, held_reboot));

    // Statuses are answered all along, promptly.
    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let client = app.client.clone();
        let url = format!("{}/v1/introspection/{waiting}", app.address);
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            let mut answered = 0;
            while !stop.load(Ordering::Relaxed) {
                let began = Instant::now();
                let response = client.get(&url).send().await.unwrap();
                assert_eq!(response.status(), 200);
                assert!(
                    began.elapsed() <= STATUS_BOUND + MARGIN,
                    "a status took {:?} while Ironic was away",
                    began.elapsed()
                );
                answered += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            answered
        })
    };

    // Work in flight ends, with Ironic named, within the client's bounds.
    let status = app.wait_finished(&processed, CALL_BOUND + MARGIN).await;
    let error = status["error"].as_str().unwrap();
    assert!(
        error.starts_with(&format!(
            "Failed to power off node {processed}, check it's power management configuration: \
             Ironic is unreachable at {}/",
            proxy.url
        )),
        "{error}"
    );
    let in_flight_ended = down_at.elapsed();
    let status = app.wait_finished(&started, CALL_BOUND + MARGIN).await;
    let error = status["error"].as_str().unwrap();
    assert!(
        error.starts_with(&format!(
            "Failed to power on node {started}, check it's power management configuration:\n\
             Ironic is unreachable at {}/",
            proxy.url
        )),
        "{error}"
    );
    assert_bounded(down_at.elapsed(), CALL_BOUND, "the end of work in flight");

    // A report is refused with 503 and the node still waits; so is a start.
    let waiting_macs = unique_macs(2);
    let payload = liberty_report(&waiting_macs, waiting_bmc);
    let began = Instant::now();
    assert_answer(
        app.post_continue(&payload).await,
        503,
        "Ironic is unavailable, try again later",
    )
    .await;
    assert_bounded(began.elapsed(), CALL_BOUND, "a report while Ironic is down");
    assert_eq!(
        app.introspection_status(&waiting).await,
        json!({"finished": false, "error": null})
    );
    let another = managed_node(&ironic, "192.0.2.75").await;
    let (response, elapsed) = start(&app, &another).await;
    assert_answer(
        response,
        503,
        &format!("Cannot get node {another}: Ironic is unavailable, try again later"),
    )
    .await;
    assert_bounded(elapsed, CALL_BOUND, "a start while Ironic is down");

    // Ironic forgets a node while we cannot see it: the clean-up keeps failing meanwhile.
    ironic.delete_node(&forgotten).await;
    let remaining = OUTAGE.saturating_sub(down_at.elapsed());
    tokio::time::sleep(remaining).await;
    assert_eq!(
        app.get(&format!("/v1/introspection/{forgotten}"), &[])
            .await
            .status(),
        200,
        "the clean-up cannot have synced with Ironic while it was away"
    );

    proxy.come_up().await;
    let up_at = Instant::now();
    stop.store(true, Ordering::Relaxed);
    let answered = poller.await.unwrap();
    assert!(answered >= 10, "only {answered} statuses during the outage");

    // The clean-up recovers by itself and drops the node Ironic forgot.
    wait_for(
        CLEAN_UP_PERIOD + CALL_BOUND + MARGIN,
        "the clean-up to drop the node Ironic forgot",
        || async {
            let status = app
                .get(&format!("/v1/introspection/{forgotten}"), &[])
                .await
                .status();
            (status == 404).then_some(())
        },
    )
    .await;
    let clean_up_recovered = up_at.elapsed();

    // The ramdisk posts its report again: it goes through.
    let response = app.post_continue(&payload).await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    assert_eq!(
        app.wait_finished(&waiting, DEADLINE).await,
        json!({"finished": true, "error": null})
    );
    assert_introspected(&ironic, &waiting, &payload, &waiting_macs[0]).await;
    println!(
        "ironic_down_for_a_minute_and_back: work in flight ended {in_flight_ended:?} after \
         Ironic went down; {answered} statuses answered during the outage; the clean-up \
         recovered {clean_up_recovered:?} after Ironic came back; the report went through \
         {:?} after",
        up_at.elapsed()
    );
    for uuid in [waiting, processed, started, another] {
        ironic.delete_node(&uuid).await;
    }
    app.stop().await;
}

/// The MACs the DHCP chain in `netns` drops, or `None` while it does not exist.
fn dropped_macs(netns: &Netns) -> Option<BTreeSet<String>> {
    Some(dropped_by(&netns.chain(CHAIN)?, CHAIN))
}

#[tokio::test]
async fn the_firewall_refresh_keeps_its_rules_while_ironic_is_down_and_recovers() {
    let test = "the_firewall_refresh_keeps_its_rules_while_ironic_is_down_and_recovers";
    let Some(ironic) = IronicApi::for_test(test) else {
        return;
    };
    let Some(netns) = Netns::create(test) else {
        return;
    };
    let proxy = FaultProxy::start(ironic.url()).await;
    let app = daemon(
        &proxy,
        &format!(
            // DHCP open with nothing under introspection (see `fault_config`'s [processing]).
            "node_not_found_hook = example\n\
             [firewall]\nmanage_firewall = true\ndnsmasq_interface = {INTERFACE}\n\
             firewall_update_period = 1\nroot_helper = {}\n",
            netns.root_helper()
        ),
    )
    .await;
    let macs = unique_macs(2);
    let idle = ironic.enroll(json!({}), &[macs[0].as_str()]).await;
    wait_for(DEADLINE, "the idle node's MAC blocked", || async {
        dropped_macs(&netns)?.contains(&macs[0]).then_some(())
    })
    .await;

    proxy.go_down().await;
    let down_at = Instant::now();
    // A port Ironic gets meanwhile cannot reach the chain; what the chain had stays.
    ironic.create_port(&idle, &macs[1]).await;
    tokio::time::sleep(OUTAGE.saturating_sub(down_at.elapsed())).await;
    let during = dropped_macs(&netns).expect("the chain is kept while Ironic is down");
    assert!(during.contains(&macs[0]), "{during:?}");
    assert!(!during.contains(&macs[1]), "{during:?}");

    proxy.come_up().await;
    let up_at = Instant::now();
    wait_for(
        Duration::from_secs(1) + CALL_BOUND + MARGIN,
        "the refresh to block the port added during the outage",
        || async {
            let now = dropped_macs(&netns)?;
            (now.contains(&macs[0]) && now.contains(&macs[1])).then_some(())
        },
    )
    .await;
    println!(
        "{test}: the firewall refresh recovered {:?} after Ironic came back",
        up_at.elapsed()
    );
    app.stop().await;
    ironic.delete_node(&idle).await;
}

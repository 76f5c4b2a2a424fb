//! Periodic work on the daemon's runtime: the firewall refresh, and the clean-up of the node
//! cache (introspections that ran out of time, old statuses, nodes deleted from Ironic);
//! plus, once at start-up, the finishing of reports a stopped daemon had accepted
//! ([`crate::process::resume_finishing`]).
//!
//! Ports `periodic_update`, `periodic_clean_up` and `sync_with_ironic` of upstream `main.py`.
//! Each job has a one-step function (tests call it directly) and runs at once, then every
//! period, until the shutdown token is cancelled; a failing step is logged and the loop goes
//! on, it never stops the daemon.

use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::introspect;
use crate::node_cache::{self, TIMEOUT_ERROR};
use crate::process;
use crate::state::AppState;

/// Starts, on the daemon's task tracker, the one-off finishing of interrupted reports and
/// the loops the configuration asks for: the firewall refresh when the firewall is managed,
/// the clean-up when `[DEFAULT] timeout` is positive (2.2 ran no clean-up at all otherwise,
/// so old statuses were never purged).
pub fn spawn(state: &AppState) {
    let resume_state = state.clone();
    state.tasks.spawn(async move {
        tokio::select! {
            outcome = process::resume_finishing(&resume_state) => match outcome {
                Ok(nodes) if !nodes.is_empty() => {
                    tracing::info!(nodes = ?nodes, "finished the introspections left unfinished at the last stop");
                }
                Ok(_) => {}
                Err(err) => {
                    tracing::error!(error = %err, "cannot finish the introspections left unfinished at the last stop");
                }
            },
            () = resume_state.shutdown.cancelled() => {}
        }
    });
    if state.firewall.is_enabled() {
        let period = seconds(
            state.config.firewall.firewall_update_period,
            "firewall_update_period",
        );
        spawn_job(state, "firewall update", period, |s| async move {
            firewall_step(&s).await
        });
    }
    if state.config.default.timeout > 0 {
        let period = seconds(state.config.default.clean_up_period, "clean_up_period");
        spawn_job(state, "clean-up", period, |s| async move {
            clean_up_step(&s).await.map(|_| ())
        });
    }
}

/// Starts [`run_every`] on the daemon's task tracker, stopped by its shutdown token; each
/// run of `step` gets its own handle on the state.
fn spawn_job<F, Fut>(state: &AppState, job: &'static str, period: Duration, step: F)
where
    F: Fn(AppState) -> Fut + Send + 'static,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    let job_state = state.clone();
    state
        .tasks
        .spawn(run_every(state.shutdown.clone(), job, period, move || {
            step(job_state.clone())
        }));
}

/// A period option as a duration; a value below one second becomes one second.
fn seconds(value: i64, option: &str) -> Duration {
    let secs = u64::try_from(value)
        .ok()
        .filter(|s| *s > 0)
        .unwrap_or_else(|| {
            tracing::warn!(
                option,
                value,
                "period is not positive; running every second"
            );
            1
        });
    Duration::from_secs(secs)
}

/// Runs `step` at once and then every `period` (on tokio's clock, which tests may pause and
/// advance) until `shutdown` is cancelled.
async fn run_every<F, Fut>(
    shutdown: CancellationToken,
    job: &'static str,
    period: Duration,
    step: F,
) where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<()>>,
{
    loop {
        tracing::debug!(job, "running periodic job");
        tokio::select! {
            outcome = step() => {
                if let Err(err) = outcome {
                    tracing::error!(job, error = %err, "periodic job failed");
                }
            }
            () = shutdown.cancelled() => return,
        }
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

/// One firewall refresh.
pub async fn firewall_step(state: &AppState) -> Result<()> {
    introspect::refresh_firewall(state, &state.ironic).await
}

/// One clean-up: purges finished statuses older than `node_status_keep_time`, finishes
/// introspections running longer than `timeout` with upstream's `Introspection timeout`
/// (their MACs then leave the firewall), and forgets nodes Ironic no longer has. Returns the
/// nodes that timed out.
pub async fn clean_up_step(state: &AppState) -> Result<Vec<String>> {
    clean_up_step_at(state, node_cache::now_unix()).await
}

/// [`clean_up_step`] as if the clock read `now` (seconds since the epoch): tests put a node
/// past its timeout by looking ahead instead of waiting.
pub async fn clean_up_step_at(state: &AppState, now: f64) -> Result<Vec<String>> {
    let config = &state.config.default;
    let timed_out = state
        .node_cache
        .clean_up(now, config.timeout, config.node_status_keep_time)
        .await?;
    if !timed_out.is_empty() {
        tracing::error!(nodes = ?timed_out, error = TIMEOUT_ERROR, "introspection timed out");
        introspect::refresh_firewall(state, &state.ironic).await?;
    }
    let in_ironic: HashSet<String> = state.ironic.list_node_uuids().await?.into_iter().collect();
    let dropped = state
        .node_cache
        .delete_nodes_not_in_list(&in_ironic)
        .await?;
    if !dropped.is_empty() {
        tracing::warn!(nodes = ?dropped, "nodes deleted from Ironic were dropped from the cache");
    }
    Ok(timed_out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Yields until the spawned loop has done what the clock lets it do.
    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    /// Spawns [`run_every`] with a job that counts its runs and ends with `outcome()`;
    /// returns the count, the token that stops the loop, and the loop's task.
    fn spawn_counting(
        period: Duration,
        outcome: fn() -> Result<()>,
    ) -> (
        Arc<AtomicUsize>,
        CancellationToken,
        tokio::task::JoinHandle<()>,
    ) {
        let runs = Arc::new(AtomicUsize::new(0));
        let shutdown = CancellationToken::new();
        let counter = runs.clone();
        let job = tokio::spawn(run_every(shutdown.clone(), "test", period, move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                outcome()
            }
        }));
        (runs, shutdown, job)
    }

    #[tokio::test(start_paused = true)]
    async fn a_job_runs_at_once_then_every_period_until_shutdown() {
        let (runs, shutdown, job) = spawn_counting(Duration::from_secs(60), || Ok(()));
        settle().await;
        assert_eq!(runs.load(Ordering::SeqCst), 1, "runs at once");
        tokio::time::advance(Duration::from_secs(59)).await;
        settle().await;
        assert_eq!(runs.load(Ordering::SeqCst), 1, "not before the period");
        tokio::time::advance(Duration::from_secs(1)).await;
        settle().await;
        assert_eq!(runs.load(Ordering::SeqCst), 2, "again after the period");
        tokio::time::advance(Duration::from_secs(120)).await;
        settle().await;
        assert_eq!(runs.load(Ordering::SeqCst), 3, "once per period");
        shutdown.cancel();
        job.await.unwrap();
        tokio::time::advance(Duration::from_secs(600)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 3, "no run after shutdown");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_job_is_run_again() {
        let (runs, shutdown, job) = spawn_counting(Duration::from_secs(1), || {
            Err(crate::error::Error::ServiceUnavailable(
                "Ironic is down".into(),
            ))
        });
        settle().await;
        tokio::time::advance(Duration::from_secs(1)).await;
        settle().await;
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        shutdown.cancel();
        job.await.unwrap();
    }
}

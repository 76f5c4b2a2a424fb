//! The PXE/DHCP firewall: which MACs may reach our DHCP server.
//!
//! Ports upstream `firewall.py` as of 2.2.7 (its last change was in 2.2.6). The firewall is
//! told what to let through and never asks Ironic or the database itself; the workflows
//! decide (in [`crate::introspect::refresh_firewall`]) between two [`Filter`]s:
//! - [`Filter::Closed`]: no DHCP at all, when no node is under introspection and no
//!   `node_not_found_hook` would take an unknown machine (2.2.5's "disable DHCP when
//!   idle"): nothing on the provisioning network gets our ramdisk by accident;
//! - [`Filter::Open`]: every MAC but the ones Ironic has a port for and that are not
//!   under introspection.
//!
//! Refreshes go through one [`Refresh`]: they run one at a time, requests that pile up
//! during one refresh share the next ([`Coalescer`]), and a filter equal to the one applied
//! last is not applied again (2.2.5's blacklist cache, dropped on closing since 2.2.6), so
//! a periodic refresh that finds nothing changed costs one Ironic port listing and no
//! iptables process. A failed apply
//! forgets what was in force, so the next refresh tries again whatever it computes; closing
//! forgets the MAC list too, so the next opening rewrites the chain.
//!
//! When: an introspection start waits for its refresh (the node's MACs must pass before it
//! reboots); a node finished by its report only asks for one in the background
//! ([`crate::introspect::refresh_firewall_in_background`]), so a report's cost does not
//! grow with the number of ports in Ironic (see [`crate::process`]); abort, time-out and
//! the periodic loop refresh too.
//!
//! Backends: [`Disabled`] (`[firewall] manage_firewall = false`) and [`iptables::Iptables`].

pub mod iptables;

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::{Arc, Mutex as StdMutex, PoisonError};

use async_trait::async_trait;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::mac::Mac;

/// A way of enforcing the DHCP filter.
#[async_trait]
pub trait Firewall: Send + Sync + std::fmt::Debug {
    /// Whether updates do anything; when false the workflows skip computing the MAC list
    /// (and so make no Ironic call for it), as upstream did with `manage_firewall = false`.
    fn is_enabled(&self) -> bool;

    /// Start-up: removes what an earlier run left behind and checks that the filter can be
    /// managed at all. A failure must stop start-up.
    async fn init(&self) -> Result<()> {
        Ok(())
    }

    /// Blocks exactly `blocked_macs` and lets every other MAC through.
    async fn update(&self, blocked_macs: &BTreeSet<Mac>) -> Result<()>;

    /// Rejects every DHCP request.
    async fn close(&self) -> Result<()>;

    /// Shutdown: removes everything [`Firewall::init`] and [`Firewall::update`] installed.
    /// Later updates do nothing.
    async fn clean_up(&self) -> Result<()> {
        Ok(())
    }
}

/// No filtering at all.
#[derive(Debug, Default, Clone, Copy)]
pub struct Disabled;

#[async_trait]
impl Firewall for Disabled {
    fn is_enabled(&self) -> bool {
        false
    }

    async fn update(&self, _blocked_macs: &BTreeSet<Mac>) -> Result<()> {
        Ok(())
    }

    async fn close(&self) -> Result<()> {
        Ok(())
    }
}

/// What the DHCP filter lets through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Filter {
    /// Nothing: every DHCP request is rejected.
    Closed,
    /// Every MAC but these.
    Open {
        /// MACs of Ironic's ports whose nodes are not under introspection.
        blocked: BTreeSet<Mac>,
    },
}

/// Whole firewall refreshes: one at a time, coalesced, and skipped when they would apply
/// the filter already in force (see the module doc).
#[derive(Debug, Default)]
pub struct Refresh {
    coalescer: Coalescer,
    /// The filter the last successful apply put in force; `None` at start and after a
    /// failed apply (the backend may be anywhere between two filters).
    applied: StdMutex<Option<Filter>>,
}

impl Refresh {
    /// Runs one refresh `job` through the [`Coalescer`].
    pub async fn run<F, Fut>(&self, job: F) -> Result<()>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<()>>,
    {
        self.coalescer.run(job).await
    }

    /// Puts `filter` in force through `backend`, unless it is the filter the last apply put
    /// there. Call it from within [`Refresh::run`], so that applies never overlap.
    pub async fn apply(&self, backend: &dyn Firewall, filter: Filter) -> Result<()> {
        {
            let mut applied = self.applied();
            if applied.as_ref() == Some(&filter) {
                tracing::debug!("firewall unchanged; not updating it");
                return Ok(());
            }
            // Until this apply succeeds, what is in force is unknown: the next refresh
            // applies whatever it computes.
            *applied = None;
        }
        match &filter {
            Filter::Closed => {
                tracing::debug!(
                    "no node under introspection and no node_not_found_hook: closing DHCP"
                );
                backend.close().await?;
            }
            Filter::Open { blocked } => {
                tracing::debug!(blocked = blocked.len(), "blocking DHCP for idle known MACs");
                backend.update(blocked).await?;
            }
        }
        *self.applied() = Some(filter);
        Ok(())
    }

    /// Whether the filter in force is known to be a [`Filter::Open`] one.
    pub fn is_open(&self) -> bool {
        matches!(*self.applied(), Some(Filter::Open { .. }))
    }

    fn applied(&self) -> std::sync::MutexGuard<'_, Option<Filter>> {
        // A plain value, replaced whole: a panic elsewhere cannot leave it half-written.
        self.applied.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The backend `[firewall]` asks for: [`Disabled`] unless `manage_firewall`, else iptables
/// through `root_helper`. Invalid chain or interface names are refused here, at start-up.
pub fn from_config(config: &Config) -> Result<Arc<dyn Firewall>> {
    let section = &config.firewall;
    if !section.manage_firewall {
        return Ok(Arc::new(Disabled));
    }
    let settings = iptables::Settings {
        root_helper: iptables::parse_root_helper(&section.root_helper),
        interface: section.dnsmasq_interface.clone(),
        chain: section.firewall_chain.clone(),
        per_rule: false,
    };
    Ok(Arc::new(iptables::Iptables::new(settings)?))
}

/// Runs a job one at a time, and lets callers that arrive while it runs share one later
/// run instead of queueing a run each.
///
/// A caller is answered by the first run that *starts* after it asked, never by one that
/// was already under way (that run may have read Ironic or the node cache before the
/// caller's change). So ten callers arriving during a slow run cause exactly one more run,
/// whose outcome all ten get.
#[derive(Debug, Default)]
pub struct Coalescer {
    /// Held for the whole of a run. A tokio mutex: it is held across `.await`, and it is
    /// fair, so waiting callers get it in arrival order.
    running: tokio::sync::Mutex<()>,
    /// Ticket bookkeeping; a std mutex, only ever held for a few instructions.
    tickets: StdMutex<Tickets>,
}

#[derive(Debug, Default)]
struct Tickets {
    /// Tickets handed out so far (the last caller's number).
    issued: u64,
    /// Every caller up to this ticket has been answered by a finished run.
    answered: u64,
    /// The outcome of that run: `None` for success, else its error, handed to each waiter
    /// as the same variant (an unreachable Ironic stays a 503 for every caller it affects).
    failure: Option<Error>,
}

impl Coalescer {
    /// Runs `job`, or waits for a run that started after this call and returns its outcome.
    pub async fn run<F, Fut>(&self, job: F) -> Result<()>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<()>>,
    {
        let ticket = {
            let mut tickets = self.tickets();
            tickets.issued += 1;
            tickets.issued
        };
        let _running = self.running.lock().await;
        let covers = {
            let tickets = self.tickets();
            if tickets.answered >= ticket {
                return match &tickets.failure {
                    None => Ok(()),
                    Some(failure) => Err(same_error(failure)),
                };
            }
            tickets.issued
        };
        let outcome = job().await;
        let mut tickets = self.tickets();
        tickets.answered = covers;
        tickets.failure = outcome.as_ref().err().map(same_error);
        outcome
    }

    fn tickets(&self) -> std::sync::MutexGuard<'_, Tickets> {
        // The guarded data is plain counters: a panic elsewhere cannot leave it inconsistent.
        self.tickets.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The error to hand a waiter of a failed run: the same variant where the variant decides
/// what the caller does (503 lets a ramdisk retry, 400 fails the node), else an internal
/// error with the same text. (The error type is not `Clone`.)
fn same_error(err: &Error) -> Error {
    match err {
        Error::ServiceUnavailable(m) => Error::ServiceUnavailable(m.clone()),
        Error::Database { outage, detail } => Error::Database {
            outage: *outage,
            detail: detail.clone(),
        },
        Error::BadRequest(m) => Error::BadRequest(m.clone()),
        Error::NotFound(m) => Error::NotFound(m.clone()),
        Error::Conflict(m) => Error::Conflict(m.clone()),
        Error::Internal { kind, detail } => Error::Internal {
            kind,
            detail: detail.clone(),
        },
        other => Error::internal("FirewallError", other),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    /// A backend whose update takes a while and counts its calls.
    #[derive(Debug, Default)]
    struct Slow {
        updates: AtomicUsize,
    }

    #[async_trait]
    impl Firewall for Slow {
        fn is_enabled(&self) -> bool {
            true
        }
        async fn update(&self, _blocked: &BTreeSet<Mac>) -> Result<()> {
            tokio::time::sleep(Duration::from_millis(200)).await;
            self.updates.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
        async fn close(&self) -> Result<()> {
            self.update(&BTreeSet::new()).await
        }
    }

    /// A backend that records what it was asked, and fails while `failing` is set.
    #[derive(Debug, Default)]
    struct Recording {
        calls: StdMutex<Vec<Filter>>,
        failing: std::sync::atomic::AtomicBool,
    }

    impl Recording {
        fn record(&self, filter: Filter) -> Result<()> {
            self.calls.lock().unwrap().push(filter);
            if self.failing.load(Ordering::SeqCst) {
                Err(Error::ServiceUnavailable("iptables failed".into()))
            } else {
                Ok(())
            }
        }
        fn calls(&self) -> Vec<Filter> {
            self.calls.lock().unwrap().clone()
        }
    }

    #[async_trait]
    impl Firewall for Recording {
        fn is_enabled(&self) -> bool {
            true
        }
        async fn update(&self, blocked: &BTreeSet<Mac>) -> Result<()> {
            self.record(Filter::Open {
                blocked: blocked.clone(),
            })
        }
        async fn close(&self) -> Result<()> {
            self.record(Filter::Closed)
        }
    }

    fn open(macs: &[&str]) -> Filter {
        Filter::Open {
            blocked: macs.iter().map(|m| m.parse().unwrap()).collect(),
        }
    }

    #[tokio::test]
    async fn an_unchanged_filter_is_not_applied_again() {
        let backend = Recording::default();
        let refresh = Refresh::default();
        let a = open(&["02:00:00:00:00:01"]);
        let b = open(&["02:00:00:00:00:01", "02:00:00:00:00:02"]);
        assert!(!refresh.is_open());
        for filter in [a.clone(), a.clone(), b.clone(), b.clone(), a.clone()] {
            refresh.apply(&backend, filter).await.unwrap();
        }
        assert_eq!(backend.calls(), [a.clone(), b, a]);
        assert!(refresh.is_open());
    }

    #[tokio::test]
    async fn closing_forgets_the_macs_and_is_done_once() {
        let backend = Recording::default();
        let refresh = Refresh::default();
        let a = open(&["02:00:00:00:00:01"]);
        for filter in [
            a.clone(),
            Filter::Closed,
            Filter::Closed,
            a.clone(),
            a.clone(),
        ] {
            refresh.apply(&backend, filter).await.unwrap();
        }
        // Reopening with the MAC list of before the closing rewrites the chain.
        assert_eq!(backend.calls(), [a.clone(), Filter::Closed, a]);
    }

    #[tokio::test]
    async fn a_failed_apply_is_tried_again_by_the_next_refresh() {
        let backend = Recording::default();
        let refresh = Refresh::default();
        let a = open(&["02:00:00:00:00:01"]);
        refresh.apply(&backend, a.clone()).await.unwrap();
        backend.failing.store(true, Ordering::SeqCst);
        let b = open(&[]);
        assert!(refresh.apply(&backend, b.clone()).await.is_err());
        assert!(
            !refresh.is_open(),
            "what is in force is unknown after a failure"
        );
        // Even the filter that was in force before the failure is applied again.
        assert!(refresh.apply(&backend, a.clone()).await.is_err());
        backend.failing.store(false, Ordering::SeqCst);
        refresh.apply(&backend, a.clone()).await.unwrap();
        refresh.apply(&backend, a.clone()).await.unwrap();
        assert_eq!(backend.calls(), [a.clone(), b, a.clone(), a]);
    }

    #[tokio::test(start_paused = true)]
    async fn ten_requests_during_one_update_cause_exactly_one_more() {
        let backend = Arc::new(Slow::default());
        let coalescer = Arc::new(Coalescer::default());
        let refresh = |backend: Arc<Slow>, coalescer: Arc<Coalescer>| async move {
            coalescer
                .run(|| async { backend.update(&BTreeSet::new()).await })
                .await
        };
        let first = tokio::spawn(refresh(backend.clone(), coalescer.clone()));
        // Let the first update start.
        tokio::time::sleep(Duration::from_millis(10)).await;
        let late: Vec<_> = (0..10)
            .map(|_| tokio::spawn(refresh(backend.clone(), coalescer.clone())))
            .collect();
        first.await.unwrap().unwrap();
        for task in late {
            task.await.unwrap().unwrap();
        }
        assert_eq!(backend.updates.load(Ordering::SeqCst), 2);

        // A request after everything settled gets its own run.
        refresh(backend.clone(), coalescer.clone()).await.unwrap();
        assert_eq!(backend.updates.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn runs_never_overlap_and_waiters_share_a_failure() {
        let running = Arc::new(AtomicUsize::new(0));
        let coalescer = Arc::new(Coalescer::default());
        let job = |running: Arc<AtomicUsize>, fail: bool| async move {
            assert_eq!(running.fetch_add(1, Ordering::SeqCst), 0, "runs overlap");
            tokio::time::sleep(Duration::from_millis(50)).await;
            running.fetch_sub(1, Ordering::SeqCst);
            if fail {
                Err(Error::internal("CalledProcessError", "iptables failed"))
            } else {
                Ok(())
            }
        };
        let first = {
            let (c, r) = (coalescer.clone(), running.clone());
            tokio::spawn(async move { c.run(|| job(r, false)).await })
        };
        tokio::time::sleep(Duration::from_millis(5)).await;
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let (c, r) = (coalescer.clone(), running.clone());
                tokio::spawn(async move { c.run(|| job(r, true)).await })
            })
            .collect();
        first.await.unwrap().unwrap();
        for waiter in waiters {
            let err = waiter.await.unwrap().unwrap_err();
            assert!(err.to_string().contains("iptables failed"), "{err}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn waiters_share_an_unreachable_ironic_as_503() {
        let coalescer = Arc::new(Coalescer::default());
        let slow_ok = || async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(())
        };
        let first = {
            let c = coalescer.clone();
            tokio::spawn(async move { c.run(slow_ok).await })
        };
        tokio::time::sleep(Duration::from_millis(5)).await;
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let c = coalescer.clone();
                tokio::spawn(async move {
                    c.run(|| async {
                        Err(Error::ServiceUnavailable("Ironic is unavailable".into()))
                    })
                    .await
                })
            })
            .collect();
        first.await.unwrap().unwrap();
        for waiter in waiters {
            let err = waiter.await.unwrap().unwrap_err();
            assert!(
                matches!(&err, Error::ServiceUnavailable(m) if m == "Ironic is unavailable"),
                "{err:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn waiters_get_an_unavailable_firewall_as_such() {
        let coalescer = Arc::new(Coalescer::default());
        let first = {
            let c = coalescer.clone();
            tokio::spawn(async move {
                c.run(|| async {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Ok(())
                })
                .await
            })
        };
        tokio::time::sleep(Duration::from_millis(5)).await;
        let waiter = {
            let c = coalescer.clone();
            tokio::spawn(async move {
                c.run(|| async { Err(Error::ServiceUnavailable("firewall down".into())) })
                    .await
            })
        };
        // The waiter has its ticket before the clock moves; `late` comes after it.
        tokio::time::sleep(Duration::from_millis(1)).await;
        let late = {
            let c = coalescer.clone();
            tokio::spawn(async move { c.run(|| async { Ok(()) }).await })
        };
        first.await.unwrap().unwrap();
        for task in [waiter, late] {
            match task.await.unwrap() {
                Err(Error::ServiceUnavailable(message)) => assert_eq!(message, "firewall down"),
                other => panic!("{other:?}"),
            }
        }
    }
}

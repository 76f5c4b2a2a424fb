//! The PXE/DHCP firewall: which MACs may reach our DHCP server.
//!
//! Ports upstream `firewall.py`. The firewall is told which MACs to block and never asks
//! Ironic or the database itself; the workflows compute that list (every MAC Ironic has a
//! port for, less the MACs of nodes under introspection) in
//! [`crate::introspect::refresh_firewall`], through a [`Coalescer`] so that refreshes run one
//! at a time and requests that pile up during one refresh share the next.
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

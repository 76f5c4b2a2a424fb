//! Start-up order, serving, and the graceful stop.
//!
//! Ports `init()`, `create_ssl_context()` and `main()` of upstream `main.py`. Differences on
//! purpose: the database schema is checked before serving (upstream failed on the first
//! query), a certificate that cannot be loaded stops start-up (upstream carried on without
//! one), and SIGTERM/SIGINT stop the daemon gracefully with exit status 0. The firewall
//! (upstream's `firewall.init` and the clean-up on exit) and the periodic jobs
//! ([`crate::periodic`]) are started and stopped in [`serve`]; the HTTP connections themselves
//! (TLS, the connection limit, client timeouts) are [`crate::server`]'s.
//!
//! Under systemd ([`crate::systemd`]), [`run`] reports readiness once the API answers and the
//! firewall is set up, reports the stop when a signal asks for it, and feeds the watchdog.
//! SIGHUP reopens the log file (for logrotate) instead of ending the process.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api::{self, AppState};
use crate::config::{AuthStrategy, Config, StoreData};
use crate::db::Db;
use crate::firewall::Refresh;
use crate::ironic::IronicClient;
use crate::node_cache::NodeCache;
use crate::server::{Limits, Tls};
use crate::swift::SwiftClient;
use crate::systemd::Notifier;
use crate::telemetry::LogHandle;

/// Connects to the database, checks its schema and builds the shared state.
pub async fn build_state(config: Arc<Config>) -> anyhow::Result<AppState> {
    let db = Db::connect(&config.database).await?;
    db.check_schema().await?;
    let auth = crate::auth::from_config(&config)?;
    let ironic = IronicClient::from_config(&config)?;
    let needs_swift = config.processing.store_data == StoreData::Swift
        || config
            .processing
            .processing_hooks
            .iter()
            .any(|h| h == "extra_hardware");
    let swift = if needs_swift {
        Some(SwiftClient::from_config(&config)?)
    } else {
        None
    };
    let hooks = crate::hooks::load_with_ironic(&config, swift.clone(), Some(&ironic))?;
    tracing::info!(hooks = ?hooks.names(), "processing hooks enabled");
    let firewall = crate::firewall::from_config(&config)?;
    let slots = usize::try_from(config.default.max_concurrency)
        .ok()
        .filter(|n| *n > 0)
        .unwrap_or(1);
    Ok(AppState {
        node_cache: NodeCache::new(db.clone()),
        db,
        auth,
        ironic,
        hooks: Arc::new(hooks),
        swift,
        firewall,
        firewall_refresh: Arc::new(Refresh::default()),
        background_slots: Arc::new(Semaphore::new(slots)),
        last_paced_reboot: Arc::default(),
        discovery: Arc::default(),
        config,
        tasks: TaskTracker::new(),
        shutdown: CancellationToken::new(),
    })
}

/// Loads the TLS certificate and key when `[DEFAULT] use_ssl` is set. Any failure is fatal.
pub async fn tls_config(config: &Config) -> anyhow::Result<Option<Tls>> {
    if !config.default.use_ssl {
        return Ok(None);
    }
    let cert = &config.default.ssl_cert_path;
    let key = &config.default.ssl_key_path;
    let tls = Tls::from_pem_files(cert, key).with_context(|| {
        format!(
            "cannot load the TLS certificate [DEFAULT] ssl_cert_path = {cert} or key \
             [DEFAULT] ssl_key_path = {key}"
        )
    })?;
    Ok(Some(tls))
}

/// Logs what upstream's `init()` reported about the configuration.
fn log_start_up(config: &Config, addr: SocketAddr, tls: bool) {
    if config.default.auth_strategy == AuthStrategy::Noauth {
        tracing::warn!("starting without authentication: every API caller is trusted");
    }
    match config.processing.store_data {
        StoreData::None => tracing::warn!(
            "introspection data will not be stored; set [processing] store_data to keep it"
        ),
        StoreData::Swift => tracing::info!(
            container = %config.swift.container,
            "introspection data will be stored in Swift"
        ),
        StoreData::Database => tracing::info!("introspection data will be stored in the database"),
    }
    if config.default.timeout <= 0 {
        tracing::warn!("introspection timeout is disabled in the configuration");
    }
    tracing::info!(
        listen = %addr,
        scheme = if tls { "https" } else { "http" },
        version = env!("CARGO_PKG_VERSION"),
        "ironic-inspector is serving"
    );
}

/// Serves the API on an already-bound listener until `shutdown` is cancelled, then drains
/// open requests (at most [`api::SHUTDOWN_GRACE`]), waits for background tasks and removes
/// the firewall chain.
///
/// Before serving, the firewall is initialised (a failure stops start-up) and its periodic
/// refresh is started on the task tracker.
pub async fn serve(state: AppState, listener: TcpListener, tls: Option<Tls>) -> anyhow::Result<()> {
    serve_supervised(state, listener, tls, &Notifier::disabled()).await
}

/// [`serve`], telling the service manager (`READY=1`) once the firewall is set up and the
/// periodic jobs are started: the listener is bound already, so from then on clients
/// connect.
pub async fn serve_supervised(
    state: AppState,
    listener: TcpListener,
    tls: Option<Tls>,
    systemd: &Notifier,
) -> anyhow::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let addr = listener.local_addr()?;
    if state.firewall.is_enabled() {
        state.firewall.init().await.context(
            "cannot set up the DHCP firewall (check [firewall] root_helper, dnsmasq_interface \
             and that iptables is installed; or set [firewall] manage_firewall = false)",
        )?;
    }
    log_start_up(&state.config, addr, tls.is_some());
    crate::periodic::spawn(&state);
    let scheme = if tls.is_some() { "https" } else { "http" };
    systemd.ready(&format!("Serving the API on {scheme}://{addr}"));
    let limits = Limits::from_config(&state.config.default);
    let shutdown = state.shutdown.clone();
    let tasks = state.tasks.clone();
    let firewall = state.firewall.clone();
    let stop_loops = state.shutdown.clone();
    let app = api::router(state);
    crate::server::serve(listener, tls, app, limits, shutdown, api::SHUTDOWN_GRACE).await;
    // Whatever ended serving, the loops stop and the firewall chain goes.
    stop_loops.cancel();
    tasks.close();
    if tokio::time::timeout(api::SHUTDOWN_GRACE, tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("background tasks still running at shutdown were abandoned");
    }
    if firewall.is_enabled()
        && let Err(err) = firewall.clean_up().await
    {
        tracing::error!(error = %err, "cannot remove the firewall chain");
    }
    tracing::info!("ironic-inspector stopped");
    Ok(())
}

/// Resolves when the process is asked to stop (SIGTERM or SIGINT).
pub async fn stop_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {},
                    _ = terminate.recv() => {},
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

/// The daemon: build everything from `config`, bind the configured address, serve until a
/// stop signal. `systemd` hears about readiness and the stop (and gets the watchdog's
/// keep-alives); `logs` is reopened on SIGHUP.
pub async fn run(config: Arc<Config>, systemd: Notifier, logs: LogHandle) -> anyhow::Result<()> {
    let systemd = Arc::new(systemd);
    // The keep-alives and the SIGHUP handler live as long as this function: the guard
    // stops them however it returns.
    let process_tasks = CancellationToken::new();
    let _stop_process_tasks = process_tasks.clone().drop_guard();
    // From the very start: SIGHUP's default action would end the process, and the
    // watchdog may be counting while the database is still being reached.
    watch_hangups(logs, process_tasks.clone())?;
    {
        let systemd = systemd.clone();
        let stop = process_tasks.clone();
        tokio::spawn(async move { systemd.feed_watchdog(stop).await });
    }
    let tls = tls_config(&config).await?;
    let state = build_state(config.clone()).await?;
    let address = format!(
        "{}:{}",
        config.default.listen_address, config.default.listen_port
    );
    let listener = TcpListener::bind(&address).with_context(|| {
        format!("cannot listen on {address} ([DEFAULT] listen_address, listen_port)")
    })?;
    let shutdown = state.shutdown.clone();
    let notifier = systemd.clone();
    tokio::spawn(async move {
        stop_signal().await;
        tracing::info!("stop requested");
        notifier.stopping("Stopping: draining open requests");
        shutdown.cancel();
    });
    serve_supervised(state, listener, tls, &systemd).await
}

/// Reopens the log file on each SIGHUP until `stop` is cancelled.
fn watch_hangups(logs: LogHandle, stop: CancellationToken) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                received = hangups.recv() => match received {
                    Some(()) => reopen_log(&logs).await,
                    None => return,
                },
            }
        }
    });
    Ok(())
}

/// Opens the log file again (after logrotate moved it away) and says so in the new one.
async fn reopen_log(logs: &LogHandle) {
    let handle = logs.clone();
    match tokio::task::spawn_blocking(move || handle.reopen()).await {
        Ok(Ok(Some(path))) => {
            tracing::info!(log_file = %path.display(), "SIGHUP: log file reopened");
        }
        Ok(Ok(None)) => tracing::info!("SIGHUP: no log file to reopen"),
        Ok(Err(err)) => tracing::error!(
            log_file = %logs.file().map(|p| p.display().to_string()).unwrap_or_default(),
            error = %err,
            "SIGHUP: cannot reopen the log file; writing on to the old one"
        ),
        Err(err) => tracing::error!(error = %err, "SIGHUP: reopening the log file failed"),
    }
}

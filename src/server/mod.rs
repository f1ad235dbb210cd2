//! The server: opens the store, checks that its records answer to its log
//! and that the log is not older than the checkpoint it last published
//! (otherwise it fails closed: reads of the log only), brings the log and
//! the expiry index up to date, and serves the daypass services plus
//! gRPC health and reflection over mutual TLS (terminated by
//! [`crate::tls`]), and, on its own plain-HTTP listener, metrics and
//! health ([`crate::metrics`]), and on another, HTTPS, the office warning
//! screen ([`crate::screen`]) and the log's tile read API
//! ([`crate::tile_api`]), until `shutdown` resolves. What it reads
//! before opening anything is [`startup`]'s. In-flight calls then drain
//! (bounded by [`DRAIN_TIMEOUT`]), the stop is logged and the newest
//! checkpoint saved. The webhook tasks ([`crate::notify`]) and the syslog
//! forwarders ([`crate::siem::forward`]) run from
//! before the first call is served until the calls have drained; they
//! deliver from the durable log even while fail-closed. A handler that panics fails only its own call, with
//! INTERNAL and [`PANIC_MESSAGE`]; the process, the connection and other
//! calls go on.

mod keys;
mod restore;
mod startup;

pub use self::startup::check_config;
use self::startup::{Startup, load_startup};
use std::{any::Any, future::Future, sync::Arc, time::Duration};

use thiserror::Error;
use tokio::{net::TcpListener, sync::oneshot};
use tonic::{
    codegen::http,
    transport::{Server, server::TcpIncoming},
};
use tower_http::catch_panic::CatchPanicLayer;

use crate::{
    clock::SharedClock,
    config::Config,
    domain::{EventKind, Name},
    ledger::{Ledger, LedgerError},
    notify::Notifier,
    pb::{
        alert_service_server::AlertServiceServer, audit_service_server::AuditServiceServer,
        gate_service_server::GateServiceServer, grant_service_server::GrantServiceServer,
        incident_service_server::IncidentServiceServer, notify_service_server::NotifyServiceServer,
        processing_service_server::ProcessingServiceServer,
        screen_service_server::ScreenServiceServer, staff_service_server::StaffServiceServer,
        tenant_service_server::TenantServiceServer,
    },
    rpc::{
        AlertApi, Api, AuditApi, GateApi, GrantApi, IncidentApi, NotifyApi, ProcessingApi,
        ScreenApi, StaffApi, TenantApi,
    },
    service::{Broker, BrokerError, Limits, expiry, incidents},
    tls,
};

/// How long in-flight calls get to finish after a shutdown signal.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest accepted request message.
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

#[derive(Debug, Error)]
pub enum ServerError {
    #[error("cannot read {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(
        "another daypass{} holds the data directory {path}: stop it first (one server per data directory)",
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    Held {
        path: std::path::PathBuf,
        pid: Option<u32>,
    },
    #[error("cannot open the data directory {path}: {source}")]
    Store {
        path: std::path::PathBuf,
        source: LedgerError,
    },
    #[error("start-up failed: {0}")]
    Startup(#[from] BrokerError),
    #[error("{0}")]
    Config(String),
    #[error("TLS setup failed: {0}")]
    Tls(String),
    #[error("server failed: {0}")]
    Transport(tonic::transport::Error),
    #[error("reflection setup failed: {0}")]
    Reflection(String),
    #[error("cannot load the log signing key: {0}")]
    LogKey(String),
    #[error("the published checkpoint (log.published_checkpoint) is unusable: {0}")]
    Published(String),
    #[error("cannot load the gate keys: {0}")]
    Gate(String),
    #[error(
        "the data directory {} has mode {mode:04o}: its group or others can read every tenant's \
         reasons; run `chmod 700 {}` (or set store.allow_shared_data_dir = true)",
        path.display(), path.display()
    )]
    SharedDataDir { path: std::path::PathBuf, mode: u32 },
    #[error("cannot start the webhooks: {0}")]
    Webhooks(String),
    #[error("cannot start the syslog forwarders: {0}")]
    Syslog(String),
    #[error("stopped, but the stop could not be logged: {0}")]
    Shutdown(BrokerError),
}

/// The sockets the server serves on, already bound (so tests can pass
/// `127.0.0.1:0` and learn the ports first). More may be added.
#[derive(Debug)]
pub struct Listeners {
    /// gRPC over mutual TLS.
    pub grpc: TcpListener,
    /// Plain-HTTP `/metrics`, `/healthz`, `/readyz` ([`crate::metrics`]);
    /// `None`: not served.
    pub metrics: Option<TcpListener>,
    /// HTTPS office warning screen ([`crate::screen`]); `None`: not served.
    pub screen: Option<TcpListener>,
    /// HTTPS tile read API ([`crate::tile_api`]); `None`: not served.
    pub tiles: Option<TcpListener>,
}

/// Serves until `shutdown` resolves.
pub async fn run(
    config: Config,
    clock: SharedClock,
    listener: Listeners,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    serve(config, clock, listener, shutdown, |ledger| ledger).await
}

/// [`run`], with the ledger's and handlers' fault switches set by `faults`
/// (tests only).
#[cfg(any(test, feature = "fault-injection"))]
pub async fn run_with_faults(
    config: Config,
    clock: SharedClock,
    faults: Arc<crate::faults::Faults>,
    listener: Listeners,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    serve(config, clock, listener, shutdown, |ledger| {
        ledger.with_faults(faults)
    })
    .await
}

async fn serve(
    config: Config,
    clock: SharedClock,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
    prepare: impl FnOnce(Ledger) -> Ledger,
) -> Result<(), ServerError> {
    let Startup {
        client_ca,
        tls_config,
        screen_tls,
        tiles_tls,
        log_key,
        gate,
    } = load_startup(
        &config,
        listeners.screen.is_some(),
        listeners.tiles.is_some(),
    )?;
    // TLS is terminated by `tls::incoming` (handshake timeout and cap), so
    // tonic serves the finished streams.
    let server = Server::builder();
    let origin = crate::ledger::checkpoint::CheckpointSigner::origin(&*log_key).to_owned();
    let ledger = open_ledger(
        &config.data_dir,
        log_key.clone(),
        config.store.cache_mib << 20,
    )
    .await?;
    let key_entries = keys::rotation_entries(&ledger, &log_key)?;
    let ledger = Arc::new(prepare(ledger));
    let disagreement = vouched_for(&ledger, &config.data_dir).await?;
    let broker = Arc::new(Broker::new(
        ledger.clone(),
        clock,
        Limits::from(&config),
        config.trust_domain.clone(),
        gate,
    ));
    broker
        .rebuild_location()
        .await
        .map_err(|source| ServerError::Store {
            path: config.data_dir.clone(),
            source,
        })?;
    broker
        .rebuild_groups()
        .await
        .map_err(|source| ServerError::Store {
            path: config.data_dir.clone(),
            source,
        })?;
    let metrics = broker.metrics().clone();
    let observed = metrics.clone();
    ledger.observe_groups(Box::new(move |commits, took| {
        observed.group_flushed(commits, took)
    }));
    let Listeners {
        grpc: listener,
        metrics: metrics_listener,
        screen: screen_listener,
        tiles: tiles_listener,
    } = listeners;
    let published_path = config.published_checkpoint_path();
    let declared = restore::declaration(&config.data_dir)?;
    let disagreement = match disagreement {
        Some(d) => Some(d),
        // A declared restore is older than what was published, by design.
        None if declared.is_some() => None,
        None => restored(&broker, &published_path)?,
    };
    if let Some((why, seq)) = disagreement {
        tracing::error!(
            %why,
            "FAIL-CLOSED: the stored records disagree with the log; serving reads of the log only"
        );
        broker.fail_closed(why, seq);
    } else if let Some(d) = &declared {
        restore::declare(&broker, d, &config.data_dir, &published_path).await?;
    }
    let epoch = ledger
        .cursor(crate::service::log_reads::RESTORE_EPOCH_CURSOR)
        .map_err(|source| ServerError::Store {
            path: config.data_dir.clone(),
            source,
        })?;
    broker.gate().set_restore_epoch(epoch.unwrap_or(0));
    if let Some(admin) = &config.bootstrap_admin {
        let name = Name::parse(admin).map_err(|e| BrokerError::InvalidArgument(e.to_string()))?;
        if broker.bootstrap_admin(&name).await? {
            tracing::info!(admin = %name, "bootstrapped the first admin");
        }
    }
    // A fail-closed server changes no state from records the log does not
    // vouch for: no expiry is written (it would follow the edited deadlines).
    let serving = broker.fail_closed_reason().is_none();
    let live = if serving { broker.load_deadlines()? } else { 0 };
    let closed = if serving {
        expiry::catch_up(&broker).await?
    } else {
        0
    };
    // The breach register is a fold over the log (never stored).
    let incidents_known = broker.load_incidents().await?;
    // So is the register of processing.
    let processing_versions = broker.load_processing().await?;
    for (kind, details) in &key_entries {
        broker.log_system(*kind, details).await?;
        tracing::info!(entry = %kind, "log key rotation: {details:?}");
    }
    let addr = listener.local_addr().ok();
    broker
        .log_server(
            EventKind::ServerStarted,
            &format!(
                "listening on {}",
                addr.map(|a| a.to_string()).unwrap_or_default()
            ),
        )
        .await?;
    tracing::info!(
        ?addr,
        live_grants = live,
        expired_while_down = closed,
        incidents = incidents_known,
        processing_versions,
        "daypass serving"
    );

    // The breach clocks' sweeper writes only while the server may write.
    let (stop_clocks, clocks_stopped) = oneshot::channel::<()>();
    let clocks = serving.then(|| {
        tokio::spawn(incidents::run(broker.clone(), async {
            let _ = clocks_stopped.await;
        }))
    });
    let (stop_sweeper, sweeper_stopped) = oneshot::channel::<()>();
    let sweeper = tokio::spawn(expiry::run(broker.clone(), async {
        let _ = sweeper_stopped.await;
    }));
    // The monitor judges the log only while the server may write (a
    // fail-closed server could not commit its alerts).
    let (stop_monitor, monitor_stopped) = oneshot::channel::<()>();
    let monitor = (serving && config.alerts.enabled).then(|| {
        tokio::spawn(crate::monitor::run(
            broker.clone(),
            config.alerts.clone(),
            async {
                let _ = monitor_stopped.await;
            },
        ))
    });
    let (stop_health, health_stopped) = oneshot::channel::<()>();
    let health_monitor = (serving && config.alerts.enabled).then(|| {
        tokio::spawn(crate::monitor::health::run(
            broker.clone(),
            config.alerts.clone(),
            async {
                let _ = health_stopped.await;
            },
        ))
    });
    let (stop_publishing, publishing_stopped) = oneshot::channel::<()>();
    let publisher = tokio::spawn(keep_published(
        broker.clone(),
        published_path.clone(),
        async {
            let _ = publishing_stopped.await;
        },
    ));

    // Webhooks follow the durable log from their stored cursors, fail-closed
    // or not: what they report is committed (crate::notify). Started
    // before any call is served, so a new hook's cursor is stored first.
    let notifier = Arc::new(
        Notifier::new(
            &config.webhooks,
            broker.ledger().clone(),
            broker.clock().clone(),
            origin,
        )
        .map_err(|e| ServerError::Webhooks(e.to_string()))?,
    );
    // Weak: the ledger's group observer holds the metrics, and the
    // notifier holds the ledger; a strong handle here would keep the store
    // open after the server stopped.
    let stats = Arc::downgrade(&notifier);
    broker.metrics().observe_webhooks(Box::new(move || {
        stats.upgrade().map(|n| n.stats()).unwrap_or_default()
    }));
    let (stop_notifying, notifying_stopped) = tokio::sync::watch::channel(false);
    let mut notifiers = notifier
        .start(notifying_stopped.clone())
        .await
        .map_err(|e| ServerError::Webhooks(e.to_string()))?;
    // The syslog forwarders (crate::siem::forward) follow the durable log
    // the same way, from their own stored cursors, and stop with the
    // webhooks.
    let forwarder = Arc::new(
        crate::siem::forward::Forwarder::new(
            &config.syslog,
            broker.ledger().clone(),
            broker.clock().clone(),
        )
        .map_err(|e| ServerError::Syslog(e.to_string()))?,
    );
    let stats = Arc::downgrade(&forwarder);
    broker.metrics().observe_syslog(Box::new(move || {
        stats.upgrade().map(|f| f.stats()).unwrap_or_default()
    }));
    notifiers.extend(
        forwarder
            .start(notifying_stopped)
            .await
            .map_err(|e| ServerError::Syslog(e.to_string()))?,
    );

    let (health, health_service) = tonic_health::server::health_reporter();
    // Every daypass service answers the standard health check by name.
    health.set_serving::<StaffServiceServer<StaffApi>>().await;
    health.set_serving::<TenantServiceServer<TenantApi>>().await;
    health.set_serving::<GrantServiceServer<GrantApi>>().await;
    health.set_serving::<GateServiceServer<GateApi>>().await;
    health.set_serving::<AlertServiceServer<AlertApi>>().await;
    health
        .set_serving::<IncidentServiceServer<IncidentApi>>()
        .await;
    health
        .set_serving::<ProcessingServiceServer<ProcessingApi>>()
        .await;
    health.set_serving::<NotifyServiceServer<NotifyApi>>().await;
    health.set_serving::<ScreenServiceServer<ScreenApi>>().await;
    health.set_serving::<AuditServiceServer<AuditApi>>().await;
    // Reflection in both versions: v1, and v1alpha, the only one many
    // stock clients (Python's grpcio-reflection, GUI tools) speak.
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| ServerError::Reflection(e.to_string()))?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|e| ServerError::Reflection(e.to_string()))?;

    let (stopping_tx, stopping) = tokio::sync::watch::channel(false);
    let stopping_rx_for_screen = stopping.clone();
    let tiles_ca = client_ca.clone();
    let api = Api::new(broker.clone(), client_ca, stopping, notifier.clone());
    let router = server
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        // No call runs longer than this, whatever the client asks for
        // (log-following streams end at shutdown instead).
        .timeout(REQUEST_TIMEOUT)
        .max_concurrent_streams(Some(MAX_STREAMS_PER_CONNECTION))
        // Counts, times and logs every call, whatever answered it (the
        // outermost layer: a handler's panic reaches it as INTERNAL).
        .layer(crate::metrics::RpcLayer(metrics))
        // A bug in one handler fails that call, not the process or the
        // connection.
        .layer(CatchPanicLayer::custom(panic_to_status))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        .add_service(limit(StaffServiceServer::new(StaffApi(api.clone()))))
        .add_service(limit(TenantServiceServer::new(TenantApi(api.clone()))))
        .add_service(limit(GrantServiceServer::new(GrantApi(api.clone()))))
        .add_service(limit(GateServiceServer::new(GateApi(api.clone()))))
        .add_service(limit(AlertServiceServer::new(AlertApi(api.clone()))))
        .add_service(limit(IncidentServiceServer::new(IncidentApi(api.clone()))))
        .add_service(limit(ProcessingServiceServer::new(ProcessingApi(
            api.clone(),
        ))))
        .add_service(limit(NotifyServiceServer::new(NotifyApi(api.clone()))))
        .add_service(limit(ScreenServiceServer::new(ScreenApi(api.clone()))))
        .add_service(limit(AuditServiceServer::new(AuditApi(api))));

    let incoming = tls::incoming(
        TcpIncoming::from(listener).with_nodelay(Some(true)),
        tls_config,
        tls::HandshakeLimits::from(&config),
    );
    let (stop_http, http_stopped) = oneshot::channel::<()>();
    let http = metrics_listener.map(|l| {
        let app = crate::metrics::router(broker.clone());
        tracing::info!(addr = ?l.local_addr().ok(), "serving /metrics, /healthz, /readyz (plain HTTP)");
        tokio::spawn(async move {
            let stopped = async {
                let _ = http_stopped.await;
            };
            if let Err(e) = axum::serve(l, app).with_graceful_shutdown(stopped).await {
                tracing::warn!(error = %e, "the metrics listener failed");
            }
        })
    });
    let (stop_screen, screen_stopped) = oneshot::channel::<()>();
    let screen = match (screen_listener, screen_tls) {
        (Some(l), Some(tls)) => {
            tracing::info!(addr = ?l.local_addr().ok(), "serving the warning screen (HTTPS)");
            let (broker, stopping) = (broker.clone(), stopping_rx_for_screen.clone());
            let limits = tls::HandshakeLimits::from(&config);
            Some(tokio::spawn(async move {
                let stopped = async {
                    let _ = screen_stopped.await;
                };
                if let Err(e) =
                    crate::screen::serve(l, tls, limits, broker, stopping, stopped).await
                {
                    tracing::warn!(error = %e, "the warning screen's listener failed");
                }
            }))
        }
        _ => None,
    };
    let (stop_tiles, tiles_stopped) = oneshot::channel::<()>();
    let tiles = match (tiles_listener, tiles_tls) {
        (Some(l), Some(tls)) => {
            tracing::info!(addr = ?l.local_addr().ok(), "serving the tile read API (HTTPS)");
            let (broker, public) = (broker.clone(), config.tiles.public_hashes);
            let limits = tls::HandshakeLimits::from(&config);
            Some(tokio::spawn(async move {
                let stopped = async {
                    let _ = tiles_stopped.await;
                };
                if let Err(e) =
                    crate::tile_api::serve(l, tls, limits, broker, tiles_ca, public, stopped).await
                {
                    tracing::warn!(error = %e, "the tile read API's listener failed");
                }
            }))
        }
        _ => None,
    };
    let (stop_serving, serving_stopped) = oneshot::channel::<()>();
    let serve = router.serve_with_incoming_shutdown(incoming, async {
        let _ = serving_stopped.await;
    });
    tokio::pin!(serve);
    let result = tokio::select! {
        r = &mut serve => r,
        () = shutdown => {
            tracing::info!("shutting down: draining in-flight calls");
            let _ = stop_serving.send(());
            // Followers of the log would otherwise hold their calls open.
            stopping_tx.send_replace(true);
            match tokio::time::timeout(DRAIN_TIMEOUT, &mut serve).await {
                Ok(r) => r,
                Err(_) => {
                    tracing::warn!("calls still running after {DRAIN_TIMEOUT:?}; stopping anyway");
                    Ok(())
                }
            }
        }
    };
    let _ = stop_sweeper.send(());
    let _ = sweeper.await;
    let _ = stop_clocks.send(());
    if let Some(c) = clocks {
        let _ = c.await;
    }
    let _ = stop_monitor.send(());
    if let Some(m) = monitor {
        let _ = m.await;
    }
    let _ = stop_health.send(());
    if let Some(h) = health_monitor {
        let _ = h.await;
    }
    let _ = stop_screen.send(());
    if let Some(screen) = screen {
        if tokio::time::timeout(DRAIN_TIMEOUT, screen).await.is_err() {
            tracing::warn!("the warning screen did not stop within {DRAIN_TIMEOUT:?}");
        }
    }
    let _ = stop_tiles.send(());
    if let Some(tiles) = tiles {
        if tokio::time::timeout(DRAIN_TIMEOUT, tiles).await.is_err() {
            tracing::warn!("the tile read API did not stop within {DRAIN_TIMEOUT:?}");
        }
    }
    let _ = stop_http.send(());
    if let Some(http) = http {
        // A scraper that holds its request open does not hold up the stop.
        if tokio::time::timeout(DRAIN_TIMEOUT, http).await.is_err() {
            tracing::warn!("the metrics listener did not stop within {DRAIN_TIMEOUT:?}");
        }
    }
    stop_notifying.send_replace(true);
    for task in notifiers {
        let _ = task.await;
    }
    broker
        .log_server(EventKind::ServerStopped, "shutdown")
        .await
        .map_err(ServerError::Shutdown)?;
    let _ = stop_publishing.send(());
    let _ = publisher.await;
    tracing::info!("daypass stopped");
    result.map_err(ServerError::Transport)
}

/// How often the newest checkpoint is saved outside the data directory
/// (and once more at a stop).
const PUBLISH_EVERY_SECS: i64 = 30;

/// Why the data directory is older than what this server published, and
/// the entry to report it at.
fn restored(broker: &Broker, path: &std::path::Path) -> Result<Option<(String, u64)>, ServerError> {
    let ledger = broker.ledger();
    let published = crate::ledger::published::load(path, ledger).map_err(ServerError::Published)?;
    let Some(cp) = published else {
        return Ok(None);
    };
    let why =
        crate::ledger::published::older_than(ledger, &cp).map_err(|source| ServerError::Store {
            path: path.to_owned(),
            source,
        })?;
    Ok(why.map(|w| (w, ledger.durable_size())))
}

/// Saves the newest durable checkpoint outside the data directory every
/// [`PUBLISH_EVERY_SECS`] (on the injected clock) and once more when
/// `stop` resolves; never while fail-closed (the saved one may be newer
/// than this data directory) and never a smaller one.
async fn keep_published(
    broker: Arc<Broker>,
    path: std::path::PathBuf,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut saved = 0u64;
    loop {
        let stopping = tokio::select! {
            () = broker.clock().sleep_until(broker.now().plus_secs(PUBLISH_EVERY_SECS)) => false,
            () = &mut stop => true,
        };
        if broker.fail_closed_reason().is_none() {
            if let Some(cp) = broker.ledger().latest_checkpoint() {
                if cp.size > saved {
                    match crate::ledger::published::save(&path, &cp) {
                        Ok(()) => saved = cp.size,
                        Err(e) => tracing::warn!(
                            error = %e,
                            path = %path.display(),
                            "cannot save the newest checkpoint outside the data directory"
                        ),
                    }
                }
            }
        }
        if stopping {
            return;
        }
    }
}

/// Checks that the stored records are what the log vouches for: every
/// staff, tenant and grant record must be what the log's entries make it,
/// and the log must be intact (`audit::check::verify_state`). Returns why
/// not, for the server to fail closed: a data-directory writer who edits a
/// record (or the log) is stopped before any decision, and auditors can
/// still read and check the log.
async fn vouched_for(
    ledger: &Arc<Ledger>,
    dir: &std::path::Path,
) -> Result<Option<(String, u64)>, ServerError> {
    let store_err = |source| ServerError::Store {
        path: dir.to_owned(),
        source,
    };
    let started = tokio::time::Instant::now();
    let reading = ledger.clone();
    let mismatches = tokio::task::spawn_blocking(move || {
        crate::audit::check::verify_state(&reading, crate::audit::state::Rules::default())
    })
    .await
    .map_err(|e| store_err(LedgerError::Unavailable(format!("the check failed: {e}"))))?
    .map_err(store_err)?;
    tracing::info!(
        entries = ledger.head().next_seq,
        ms = started.elapsed().as_millis() as u64,
        differences = mismatches.len(),
        "checked the stored records against the log"
    );
    for m in &mismatches {
        tracing::error!(record = %m.record, seq = m.seq, why = %m.why, "a stored record disagrees with the log");
    }
    Ok(mismatches.first().map(|first| {
        (
            format!(
                "the stored records disagree with the log in {} place(s); first: {}",
                mismatches.len(),
                first
            ),
            first.seq,
        )
    }))
}

/// The file in the data directory naming the process that holds it.
const PID_FILE: &str = "daypass.pid";

/// The pid the last server to open `data_dir` recorded, if any.
pub fn holder_pid(data_dir: &std::path::Path) -> Option<u32> {
    std::fs::read_to_string(data_dir.join(PID_FILE))
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// Opens the ledger, waiting up to [`LOCK_WAIT`] for a previous handle in
/// this process (a restart) to let go of the database lock.
async fn open_ledger(
    dir: &std::path::Path,
    key: Arc<crate::ledger::checkpoint::RotatingLogKey>,
    cache_bytes: u64,
) -> Result<Ledger, ServerError> {
    let deadline = tokio::time::Instant::now() + LOCK_WAIT;
    loop {
        match Ledger::open_sled(dir, key.clone(), cache_bytes) {
            Err(e) if e.is_locked() && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) if e.is_locked() => {
                return Err(ServerError::Held {
                    path: dir.to_owned(),
                    pid: holder_pid(dir),
                });
            }
            result => {
                let ledger = result.map_err(|source| ServerError::Store {
                    path: dir.to_owned(),
                    source,
                })?;
                // Who holds the directory, for the next one that tries.
                let pid = format!("{}\n", std::process::id());
                if let Err(e) = crate::pki::write_secret(&dir.join(PID_FILE), &pid) {
                    tracing::warn!(error = %e, "cannot write {PID_FILE} in the data directory");
                }
                return Ok(ledger);
            }
        }
    }
}

/// What the caller of a handler that panicked is told.
pub const PANIC_MESSAGE: &str = "internal error; the server logged it";

/// The answer to a call whose handler panicked: INTERNAL with a fixed
/// message. The payload may hold request data or worse, so it goes to the
/// server's log only.
fn panic_to_status(payload: Box<dyn Any + Send>) -> http::Response<tonic::body::Body> {
    let detail = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("(a panic payload that is not text)");
    tracing::error!(
        panic = detail,
        "a handler panicked; its call failed with INTERNAL"
    );
    crate::rpc::panic_status(PANIC_MESSAGE).into_http()
}

/// The longest a unary call may take on the server.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Calls in flight per connection.
pub const MAX_STREAMS_PER_CONNECTION: u32 = 256;

/// How long start-up waits for the database lock.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// Applies the message size limits to a generated service.
fn limit<S: Limited>(svc: S) -> S {
    svc.limited()
}

/// Generated servers all have the same size-limit builders; this trait lets
/// [`limit`] treat them alike.
trait Limited {
    fn limited(self) -> Self;
}

macro_rules! impl_limited {
    ($($ty:ty),*) => {$(
        impl Limited for $ty {
            fn limited(self) -> Self {
                self.max_decoding_message_size(MAX_MESSAGE_BYTES)
                    .max_encoding_message_size(4 * MAX_MESSAGE_BYTES)
            }
        }
    )*};
}

impl_limited!(
    StaffServiceServer<StaffApi>,
    TenantServiceServer<TenantApi>,
    GrantServiceServer<GrantApi>,
    AuditServiceServer<AuditApi>,
    GateServiceServer<GateApi>,
    AlertServiceServer<AlertApi>,
    IncidentServiceServer<IncidentApi>,
    ProcessingServiceServer<ProcessingApi>,
    NotifyServiceServer<NotifyApi>,
    ScreenServiceServer<ScreenApi>
);

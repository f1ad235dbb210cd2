//! Webhooks: notifications of log entries, delivered over HTTP(S), signed.
//!
//! **The log is the outbox.** Every notifiable event is already a log entry,
//! committed atomically with its state change, so nothing needs writing "in
//! the same transaction" here and a crash loses nothing: one delivery task
//! per configured hook ([`Notifier::start`]) follows the *durable* log
//! ([`Ledger::subscribe`], [`Ledger::entries_from`]) from a cursor kept in the
//! store ([`Ledger::notifier_state`]), delivers the matching entries one at
//! a time in log order, and moves the cursor past an entry only once the
//! receiver answered 2xx (or the entry became a dead letter). Delivery is
//! therefore **at least once**: a crash after the answer and before the
//! cursor was stored delivers that entry again, with the same idempotency
//! key (`<hook>:<seq>`, in the `Daypass-Delivery` header and the body's
//! `id`), which receivers use to drop duplicates.
//!
//! Retries: connect errors, timeouts (10 s per attempt), 5xx and 429 are
//! retried with capped exponential backoff on the injected clock; after
//! `max_attempts` (or at once on another answer, a 4xx the receiver will
//! keep giving) the entry is stored as a [`DeadLetter`] and the hook moves
//! on. A dead letter is retried by [`retry_dead_letter`]: it is queued in
//! the hook's state and delivered (before new entries) by the next task
//! that runs the hook.
//!
//! A fail-closed server (`Broker::fail_closed`) still delivers: the entries
//! are committed and durable, and the log (not the records the start-up
//! check doubts) is what a notification reports.
//!
//! Not here: which entries exist (the use cases write them) and metrics
//! (the counters are exposed through [`Notifier::stats`], which the
//! server hands to [`crate::metrics::Metrics::observe_webhooks`] to be
//! read at each scrape). Payload and signature: docs/webhooks.md.

mod http;

use std::{
    collections::BTreeMap,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use bytes::Bytes;
use ring::hmac;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::{sync::watch, task::JoinHandle};

pub use self::http::Endpoint;
use crate::{
    audit::SealedEntry,
    clock::{SharedClock, Timestamp},
    config::{WebhookConfig, WebhookFormat},
    domain::detail,
    ledger::{Ledger, LedgerError},
};

/// The kinds a hook may be sent. `grant.requested` only when the request
/// waits for approval (its entry has `pending_until`); `alert.raised`
/// once the server writes it.
pub const NOTIFIABLE: [&str; 9] = [
    "grant.requested",
    "grant.approved",
    "grant.denied",
    "grant.activated",
    "grant.revoked",
    "staff.offboarded",
    "alert.raised",
    "subprocessor.announced",
    "grant.reviewed",
];

/// The header carrying the idempotency key.
pub const DELIVERY_HEADER: &str = "daypass-delivery";
/// The header carrying `t=<unix seconds>,v1=<hex HMAC-SHA256>`.
pub const SIGNATURE_HEADER: &str = "daypass-signature";
/// Each attempt's limit (connect, TLS, request and answer).
pub const ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Entries read from the store at a time.
const PAGE: usize = 256;

#[derive(Debug, Error)]
pub enum NotifyError {
    #[error("the url must be http://host[:port]/path or https://…: {0}")]
    Url(String),
    #[error("webhook {hook:?}: secret_file {path}: {message}")]
    Secret {
        hook: String,
        path: std::path::PathBuf,
        message: String,
    },
    #[error("webhook {hook:?}: ca_file {path}: {message}")]
    CaFile {
        hook: String,
        path: std::path::PathBuf,
        message: String,
    },
    #[error("webhook state: {0}")]
    Store(#[from] LedgerError),
    #[error("no webhook is named {0:?}")]
    UnknownHook(String),
    #[error("webhook {hook:?} has no dead letter at seq {seq}")]
    NoDeadLetter { hook: String, seq: u64 },
}

/// A delivery given up on: stored in the hook's state until retried.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub seq: u64,
    pub kind: String,
    pub attempts: u32,
    /// The last attempt's failure (a status or a connection error).
    pub last_error: String,
    /// When it was given up on (the injected clock).
    pub failed_at: Timestamp,
}

/// What the store keeps per hook (JSON under the hook's name).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookState {
    /// The next seq this hook looks at: every entry below it was delivered
    /// (2xx), skipped by the filters, or dead-lettered.
    pub cursor: u64,
    pub dead: Vec<DeadLetter>,
    /// Dead letters queued for another round of attempts.
    pub retry: Vec<u64>,
}

/// One hook's counters ([`Notifier::stats`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookStats {
    pub name: String,
    pub cursor: u64,
    /// Durable entries not yet looked at: the durable head − the cursor.
    pub depth: u64,
    pub delivered: u64,
    /// Failed attempts (each retry counts).
    pub failed_attempts: u64,
    pub dead_letters: u64,
}

/// The delivery tasks' shared part: one [`Hook`] per configured webhook.
pub struct Notifier {
    ledger: Arc<Ledger>,
    clock: SharedClock,
    origin: String,
    hooks: Vec<Arc<Hook>>,
}

struct Hook {
    config: WebhookConfig,
    key: hmac::Key,
    endpoint: Endpoint,
    events: Vec<String>,
    cursor: AtomicU64,
    delivered: AtomicU64,
    failed: AtomicU64,
    dead: AtomicU64,
    /// Dead letters asked to be retried (the RPC), for the running task.
    queued: parking_lot::Mutex<Vec<u64>>,
    wake: tokio::sync::Notify,
}

/// Reads every hook's secret and TLS roots, as [`Notifier::new`] will:
/// for the server to refuse a bad hook before it opens or logs anything.
pub fn check(configs: &[WebhookConfig]) -> Result<(), NotifyError> {
    for c in configs {
        read_secret(&c.name, &c.secret_file)?;
        Endpoint::parse(&c.url)?.with_roots(&c.name, c.ca_file.as_deref())?;
    }
    Ok(())
}

impl Notifier {
    /// Loads every hook's secret (refused if its group or others can read
    /// it) and TLS roots. Nothing runs until [`Notifier::start`].
    pub fn new(
        configs: &[WebhookConfig],
        ledger: Arc<Ledger>,
        clock: SharedClock,
        origin: String,
    ) -> Result<Notifier, NotifyError> {
        let mut hooks = Vec::new();
        for c in configs {
            let secret = read_secret(&c.name, &c.secret_file)?;
            let endpoint = Endpoint::parse(&c.url)?.with_roots(&c.name, c.ca_file.as_deref())?;
            hooks.push(Arc::new(Hook {
                key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
                endpoint,
                events: c
                    .events
                    .clone()
                    .unwrap_or_else(|| NOTIFIABLE.iter().map(|k| (*k).to_owned()).collect()),
                config: c.clone(),
                cursor: AtomicU64::new(0),
                delivered: AtomicU64::new(0),
                failed: AtomicU64::new(0),
                dead: AtomicU64::new(0),
                queued: parking_lot::Mutex::new(Vec::new()),
                wake: tokio::sync::Notify::new(),
            }));
        }
        Ok(Notifier {
            ledger,
            clock,
            origin,
            hooks,
        })
    }

    /// Reads (or, for a hook seen for the first time, creates at the
    /// durable head: a new hook is sent what happens from now on, not the
    /// whole history) each hook's state, then spawns one delivery task per
    /// hook. The tasks end once `stop` turns true.
    pub async fn start(
        self: &Arc<Self>,
        stop: watch::Receiver<bool>,
    ) -> Result<Vec<JoinHandle<()>>, NotifyError> {
        let mut tasks = Vec::new();
        for hook in &self.hooks {
            let state = match load(&self.ledger, &hook.config.name).await? {
                Some(s) => s,
                None => {
                    let s = HookState {
                        cursor: *self.ledger.subscribe().borrow(),
                        ..HookState::default()
                    };
                    store(&self.ledger, &hook.config.name, &s).await?;
                    s
                }
            };
            hook.cursor.store(state.cursor, Ordering::Relaxed);
            hook.dead.store(state.dead.len() as u64, Ordering::Relaxed);
            let (me, hook, stop) = (self.clone(), hook.clone(), stop.clone());
            tasks.push(tokio::spawn(
                async move { me.run(&hook, state, stop).await },
            ));
        }
        Ok(tasks)
    }

    /// The stored dead letters of every hook (or of `only`), by hook.
    pub async fn dead_letters(
        &self,
        only: Option<&str>,
    ) -> Result<Vec<(String, DeadLetter)>, NotifyError> {
        if let Some(name) = only {
            self.hook(name)?;
        }
        let mut out = Vec::new();
        for h in &self.hooks {
            let name = &h.config.name;
            if only.is_none_or(|o| o == name) {
                for d in dead_letters(&self.ledger, name).await? {
                    out.push((name.clone(), d));
                }
            }
        }
        Ok(out)
    }

    /// Queues the dead letter (`hook`, `seq`) for the running task, which
    /// stores the request and delivers it before new entries.
    pub async fn retry(&self, hook: &str, seq: u64) -> Result<(), NotifyError> {
        let h = self.hook(hook)?;
        if !dead_letters(&self.ledger, hook)
            .await?
            .iter()
            .any(|d| d.seq == seq)
        {
            return Err(NotifyError::NoDeadLetter {
                hook: hook.to_owned(),
                seq,
            });
        }
        h.queued.lock().push(seq);
        h.wake.notify_one();
        Ok(())
    }

    fn hook(&self, name: &str) -> Result<&Arc<Hook>, NotifyError> {
        self.hooks
            .iter()
            .find(|h| h.config.name == name)
            .ok_or_else(|| NotifyError::UnknownHook(name.to_owned()))
    }

    /// Per hook: cursor, outbox depth and failure counts (for metrics).
    pub fn stats(&self) -> Vec<HookStats> {
        let head = *self.ledger.subscribe().borrow();
        self.hooks
            .iter()
            .map(|h| {
                let cursor = h.cursor.load(Ordering::Relaxed);
                HookStats {
                    name: h.config.name.clone(),
                    cursor,
                    depth: head.saturating_sub(cursor),
                    delivered: h.delivered.load(Ordering::Relaxed),
                    failed_attempts: h.failed.load(Ordering::Relaxed),
                    dead_letters: h.dead.load(Ordering::Relaxed),
                }
            })
            .collect()
    }

    /// One hook's delivery loop: queued retries first, then the log from
    /// the cursor up to the durable head; then waits for the head to move.
    async fn run(&self, hook: &Hook, mut state: HookState, mut stop: watch::Receiver<bool>) {
        let mut head = self.ledger.subscribe();
        loop {
            if *stop.borrow() {
                return;
            }
            let step = self.step(hook, &mut state, &mut head, &mut stop).await;
            match step {
                Ok(Step::Stopped) => return,
                Ok(Step::Progress) => {}
                Ok(Step::Idle) => {
                    // A dropped stop sender (the server gave up during
                    // start-up) stops the task too.
                    tokio::select! {
                        r = head.changed() => if r.is_err() { return },
                        () = hook.wake.notified() => {}
                        r = stop.changed() => if r.is_err() { return },
                    }
                }
                Err(e) => {
                    // The store failed (a full disk, say): try again later,
                    // from the stored cursor; nothing is skipped.
                    tracing::warn!(hook = %hook.config.name, error = %e, "webhook delivery paused");
                    let later = self.clock.now().plus_secs(5);
                    tokio::select! {
                        () = self.clock.sleep_until(later) => {}
                        r = stop.changed() => if r.is_err() { return },
                    }
                    if let Ok(Some(s)) = load(&self.ledger, &hook.config.name).await {
                        state = s;
                    }
                }
            }
        }
    }

    async fn step(
        &self,
        hook: &Hook,
        state: &mut HookState,
        head: &mut watch::Receiver<u64>,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<Step, NotifyError> {
        let queued = std::mem::take(&mut *hook.queued.lock());
        if !queued.is_empty() {
            for seq in queued {
                if state.dead.iter().any(|d| d.seq == seq) && !state.retry.contains(&seq) {
                    state.retry.push(seq);
                }
            }
            store(&self.ledger, &hook.config.name, state).await?;
        }
        if let Some(&seq) = state.retry.first() {
            let entry = self.ledger.entry(seq)?;
            let outcome = match &entry {
                Some(e) => self.deliver(hook, e, stop).await,
                None => Outcome::Dead(0, format!("entry {seq} is not in the log")),
            };
            state.retry.remove(0);
            match outcome {
                Outcome::Stopped => return Ok(Step::Stopped),
                Outcome::Delivered => state.dead.retain(|d| d.seq != seq),
                Outcome::Dead(attempts, last_error) => {
                    if let Some(d) = state.dead.iter_mut().find(|d| d.seq == seq) {
                        d.attempts = attempts;
                        d.last_error = last_error;
                        d.failed_at = self.clock.now();
                    }
                }
            }
            store(&self.ledger, &hook.config.name, state).await?;
            hook.dead.store(state.dead.len() as u64, Ordering::Relaxed);
            return Ok(Step::Progress);
        }
        let durable = *head.borrow_and_update();
        if state.cursor >= durable {
            return Ok(Step::Idle);
        }
        let ledger = self.ledger.clone();
        let from = state.cursor;
        let page = tokio::task::spawn_blocking(move || {
            ledger
                .entries_from(from)
                .take_while(|e| e.as_ref().map_or(true, |e| e.entry.seq < durable))
                .take(PAGE)
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(|e| LedgerError::Unavailable(format!("reading the log stopped: {e}")))??;
        if page.is_empty() {
            return Ok(Step::Idle);
        }
        let mut moved = false;
        for e in &page {
            if hook.wants(&e.entry) {
                match self.deliver(hook, e, stop).await {
                    Outcome::Stopped => {
                        if moved {
                            store(&self.ledger, &hook.config.name, state).await?;
                        }
                        return Ok(Step::Stopped);
                    }
                    Outcome::Delivered => {}
                    Outcome::Dead(attempts, last_error) => {
                        tracing::warn!(
                            hook = %hook.config.name,
                            seq = e.entry.seq,
                            attempts,
                            %last_error,
                            "webhook delivery dead-lettered"
                        );
                        state.dead.push(DeadLetter {
                            seq: e.entry.seq,
                            kind: e.entry.kind.clone(),
                            attempts,
                            last_error,
                            failed_at: self.clock.now(),
                        });
                        hook.dead.store(state.dead.len() as u64, Ordering::Relaxed);
                    }
                }
                state.cursor = e.entry.seq + 1;
                // Stored after every delivery: a crash repeats at most one.
                store(&self.ledger, &hook.config.name, state).await?;
                moved = false;
            } else {
                state.cursor = e.entry.seq + 1;
                moved = true;
            }
            hook.cursor.store(state.cursor, Ordering::Relaxed);
        }
        if moved {
            store(&self.ledger, &hook.config.name, state).await?;
        }
        Ok(Step::Progress)
    }

    /// Attempts one entry until it is acknowledged, given up on, or the
    /// task is stopped.
    async fn deliver(
        &self,
        hook: &Hook,
        e: &SealedEntry,
        stop: &mut watch::Receiver<bool>,
    ) -> Outcome {
        let id = format!("{}:{}", hook.config.name, e.entry.seq);
        let body = Bytes::from(match hook.config.format {
            WebhookFormat::Json => json_body(&id, e, &self.origin),
            WebhookFormat::Slack => slack_body(e, self.grant_reason(&e.entry).as_deref()),
        });
        let mut backoff = hook.config.backoff_initial_ms;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let t = self.clock.now().millis().div_euclid(1000);
            let signature = signature(&hook.key, t, &body);
            let sent = tokio::select! {
                r = hook.endpoint.post(body.clone(), &id, &signature) => r,
                _ = stop.changed() => return Outcome::Stopped,
            };
            let failure = match sent {
                Ok(()) => {
                    hook.delivered.fetch_add(1, Ordering::Relaxed);
                    return Outcome::Delivered;
                }
                Err(f) => f,
            };
            hook.failed.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(hook = %hook.config.name, %id, attempt, error = %failure.message, "webhook attempt failed");
            if !failure.retryable || attempt >= hook.config.max_attempts {
                return Outcome::Dead(attempt, failure.message);
            }
            let wake = self
                .clock
                .now()
                .millis()
                .saturating_add(i64::try_from(backoff).unwrap_or(i64::MAX));
            tokio::select! {
                () = self.clock.sleep_until(Timestamp(wake)) => {}
                _ = stop.changed() => return Outcome::Stopped,
            }
            backoff = backoff.saturating_mul(2).min(hook.config.backoff_max_ms);
        }
    }
}

impl Notifier {
    /// The reason of the grant an entry is about, when the entry itself
    /// does not carry it (an activation, a decision): from the grant's
    /// record, whose reason never changes.
    fn grant_reason(&self, e: &crate::audit::Entry) -> Option<String> {
        if e.details.contains_key(detail::REASON) {
            return None;
        }
        let id = crate::domain::GrantId::parse(e.details.get(detail::GRANT)?)?;
        self.ledger.grant(&id).ok().flatten().map(|g| g.reason)
    }
}

enum Step {
    Progress,
    Idle,
    Stopped,
}

enum Outcome {
    Delivered,
    /// Attempts made and the last failure.
    Dead(u32, String),
    Stopped,
}

impl Hook {
    fn wants(&self, e: &crate::audit::Entry) -> bool {
        notifiable(e)
            && self.events.contains(&e.kind)
            && self
                .config
                .tenants
                .as_ref()
                .is_none_or(|ts| ts.contains(&e.tenant))
    }
}

/// Whether an entry is one of the [`NOTIFIABLE`] events.
pub fn notifiable(e: &crate::audit::Entry) -> bool {
    NOTIFIABLE.contains(&e.kind.as_str())
        && (e.kind != "grant.requested" || e.details.contains_key(detail::PENDING_UNTIL))
}

/// `t=<t>,v1=<lowercase hex HMAC-SHA256(key, "<t>." ‖ body)>`.
pub fn signature(key: &hmac::Key, t: i64, body: &[u8]) -> String {
    let mut ctx = hmac::Context::with_key(key);
    ctx.update(format!("{t}.").as_bytes());
    ctx.update(body);
    format!("t={t},v1={}", hex::encode(ctx.sign().as_ref()))
}

/// The JSON body (docs/webhooks.md).
pub fn json_body(id: &str, e: &SealedEntry, origin: &str) -> Vec<u8> {
    let e = &e.entry;
    serde_json::json!({
        "id": id,
        "kind": e.kind,
        "seq": e.seq,
        "timestamp": e.timestamp.to_rfc3339(),
        "tenant": e.tenant,
        "actor": e.actor,
        "details": e.details,
        "log_origin": origin,
    })
    .to_string()
    .into_bytes()
}

/// The Slack body: one line saying who did what, where, to which grant,
/// and why.
pub fn slack_body(e: &SealedEntry, grant_reason: Option<&str>) -> Vec<u8> {
    serde_json::json!({ "text": summary(&e.entry, grant_reason) })
        .to_string()
        .into_bytes()
}

/// `daypass #12: grant.requested by staff/bob on acme (grant g-1, for bob,
/// waiting for approval by group leads 2 of 2: staff/carol staff/dave):
/// "INC-7 disk full"`; `grant_reason` stands in
/// for an entry without a reason of its own.
pub fn summary(e: &crate::audit::Entry, grant_reason: Option<&str>) -> String {
    let d: &BTreeMap<String, String> = &e.details;
    let mut s = format!("daypass #{}: {} by {}", e.seq, e.kind, e.actor);
    if !e.tenant.is_empty() {
        s.push_str(&format!(" on {}", e.tenant));
    }
    let mut about = Vec::new();
    if let Some(g) = d.get(detail::GRANT) {
        about.push(format!("grant {g}"));
    }
    if let Some(h) = d.get(detail::HOLDER) {
        about.push(format!("for {h}"));
    }
    if let Some(n) = d.get(detail::NAME) {
        about.push(n.clone());
    }
    if d.contains_key(detail::PENDING_UNTIL) {
        // Who it waits for, so the people named can act on it.
        about.push(match (d.get(detail::AWAITS), d.get(detail::APPROVERS)) {
            (Some(w), Some(a)) if !a.is_empty() => {
                format!("waiting for approval by {w}: {}", a.replace(',', " "))
            }
            (Some(w), _) => format!("waiting for approval by {w}"),
            (None, _) => "waiting for approval".into(),
        });
    }
    if !about.is_empty() {
        s.push_str(&format!(" ({})", about.join(", ")));
    }
    if let Some(r) = d.get(detail::REASON).map(String::as_str).or(grant_reason) {
        s.push_str(&format!(": {r:?}"));
    }
    if let Some(n) = d.get(detail::NOTE).filter(|n| !n.is_empty()) {
        s.push_str(&format!(" (note: {n:?})"));
    }
    // One line whatever the texts hold.
    s.replace(['\n', '\r'], " ")
}

/// The dead letters of `hook`, as stored.
pub async fn dead_letters(ledger: &Ledger, hook: &str) -> Result<Vec<DeadLetter>, NotifyError> {
    Ok(load(ledger, hook).await?.unwrap_or_default().dead)
}

/// Queues the dead letter of `hook` at `seq` for delivery again; the hook's
/// task takes it before new entries (when it starts, or on its next round).
/// Writes the stored state: call it while no notifier runs the hook.
pub async fn retry_dead_letter(ledger: &Ledger, hook: &str, seq: u64) -> Result<(), NotifyError> {
    let mut state = load(ledger, hook)
        .await?
        .ok_or_else(|| NotifyError::UnknownHook(hook.to_owned()))?;
    if !state.dead.iter().any(|d| d.seq == seq) {
        return Err(NotifyError::NoDeadLetter {
            hook: hook.to_owned(),
            seq,
        });
    }
    if !state.retry.contains(&seq) {
        state.retry.push(seq);
    }
    store(ledger, hook, &state).await
}

async fn load(ledger: &Ledger, hook: &str) -> Result<Option<HookState>, NotifyError> {
    match ledger.notifier_state(hook).await? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            NotifyError::Store(LedgerError::Corrupt(format!(
                "the state of webhook {hook:?} does not decode: {e}"
            )))
        }),
    }
}

async fn store(ledger: &Ledger, hook: &str, state: &HookState) -> Result<(), NotifyError> {
    let bytes = serde_json::to_vec(state)
        .map_err(|e| NotifyError::Store(LedgerError::Unavailable(format!("cannot encode: {e}"))))?;
    Ok(ledger.put_notifier_state(hook, bytes).await?)
}

/// The key file's bytes (a trailing newline dropped); refused if its
/// group or others may read it, or if it is shorter than 16 bytes.
fn read_secret(hook: &str, path: &Path) -> Result<Vec<u8>, NotifyError> {
    let err = |message: String| NotifyError::Secret {
        hook: hook.to_owned(),
        path: path.to_owned(),
        message,
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path)
            .map_err(|e| err(format!("cannot read it: {e}")))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(err(format!(
                "has mode {:04o}: others may read the key; run `chmod 600` on it",
                mode & 0o7777
            )));
        }
    }
    let mut key = std::fs::read(path).map_err(|e| err(format!("cannot read it: {e}")))?;
    while key.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        key.pop();
    }
    if key.len() < 16 {
        return Err(err("the key must be at least 16 bytes".into()));
    }
    Ok(key)
}

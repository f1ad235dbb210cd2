//! The use cases: the [`Broker`] and one file per group of them
//! ([`admission`], [`staff`], [`tenants`], [`grants`], [`groups`],
//! [`access`], [`expiry`], [`log_reads`]). Every method takes an already-admitted
//! [`Caller`] and a typed command ([`commands`]); every state change and
//! decision is written with its log entry through
//! [`Ledger::commit`](crate::ledger::Ledger::commit) and is durable before
//! the method returns.
//!
//! Not here: certificates and gRPC (see [`crate::rpc`]), who may do what
//! (see [`crate::policy`]), the storage engine (see [`crate::ledger`]).

pub mod access;
pub mod admission;
pub mod alerts;
pub mod break_glass;
pub mod commands;
pub mod expiry;
pub mod grants;
pub mod groups;
pub mod incident_documents;
pub mod incidents;
pub mod location;
pub mod log_reads;
pub mod processing;
pub mod processing_documents;
pub mod screens;
pub mod staff;
pub mod tenants;
pub mod tiles;

use std::sync::Arc;

use thiserror::Error;

pub use self::{
    access::{AccessRecord, Validation},
    expiry::ExpiryIndex,
    log_reads::{Consistency, Inclusion, MAX_PAGE, MAX_TENANT_PAGE, TenantPage},
};
use crate::{
    audit::state::Rules,
    clock::{SharedClock, Timestamp},
    config::Config,
    domain::{Actor, GrantId},
    gate::Gate,
    identity::IdentityError,
    ledger::{Committed, Ledger, LedgerError, Receipt},
    limits::{Limited, Rate, RateLimits, RefusalLog, Slot, Slots},
    policy::{Caller, Refusal},
};

/// Everything a broker call can fail with. Mapped to a gRPC status in
/// exactly one place (`rpc::status`), through its [`ErrorCode`].
#[derive(Debug, Error)]
pub enum BrokerError {
    #[error("{0}")]
    Unauthenticated(#[from] IdentityError),
    #[error("{0}")]
    Refused(#[from] Refusal),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    OutOfRange(String),
    /// A resource other than a rate (e.g. open streams) is used up.
    #[error("{0}")]
    Exhausted(String),
    #[error(
        "{caller} is over its limit for {} ({:.0} per second, bursts of {:.0}); retry in {} ms",
        .limited.class.as_str(), .limited.rate.per_sec, .limited.rate.burst, .limited.retry_after_ms
    )]
    RateLimited { caller: Actor, limited: Limited },
    #[error(transparent)]
    Store(#[from] LedgerError),
}

/// The kind of a [`BrokerError`], as logged in `call.refused` entries and
/// mapped to a gRPC code by the RPC layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    Unauthenticated,
    PermissionDenied,
    InvalidArgument,
    NotFound,
    AlreadyExists,
    FailedPrecondition,
    OutOfRange,
    ResourceExhausted,
    Unavailable,
    Internal,
}

impl ErrorCode {
    /// As written in `call.refused` entries.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::PermissionDenied => "permission-denied",
            ErrorCode::InvalidArgument => "invalid-argument",
            ErrorCode::NotFound => "not-found",
            ErrorCode::AlreadyExists => "already-exists",
            ErrorCode::FailedPrecondition => "failed-precondition",
            ErrorCode::OutOfRange => "out-of-range",
            ErrorCode::ResourceExhausted => "resource-exhausted",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

impl BrokerError {
    pub fn code(&self) -> ErrorCode {
        match self {
            BrokerError::Unauthenticated(_) => ErrorCode::Unauthenticated,
            BrokerError::Refused(_) | BrokerError::PermissionDenied(_) => {
                ErrorCode::PermissionDenied
            }
            BrokerError::InvalidArgument(_) => ErrorCode::InvalidArgument,
            BrokerError::NotFound(_) => ErrorCode::NotFound,
            BrokerError::AlreadyExists(_) => ErrorCode::AlreadyExists,
            BrokerError::FailedPrecondition(_) => ErrorCode::FailedPrecondition,
            BrokerError::OutOfRange(_) => ErrorCode::OutOfRange,
            BrokerError::RateLimited { .. } | BrokerError::Exhausted(_) => {
                ErrorCode::ResourceExhausted
            }
            BrokerError::Store(LedgerError::Unavailable(_)) => ErrorCode::Unavailable,
            BrokerError::Store(LedgerError::Corrupt(_)) => ErrorCode::Internal,
        }
    }

    /// Refusals are logged; storage failures cannot be.
    pub fn is_refusal(&self) -> bool {
        match self {
            BrokerError::Store(_) => false,
            // Only the first refusal in its window (limits::LOG_EVERY_MS).
            BrokerError::RateLimited { limited, .. } => limited.log.is_some(),
            _ => true,
        }
    }
}

type Result<T, E = BrokerError> = std::result::Result<T, E>;

/// A result with the receipt of the entries that record it.
pub type Receipted<T> = (T, Receipt);

/// Limits from the configuration.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_duration_secs: i64,
    pub pending_ttl_secs: i64,
    /// A break-glass grant's default and longest length
    /// (`grants.break_glass_default_secs`, `grants.break_glass_max_secs`).
    pub break_glass_default_secs: i64,
    pub break_glass_max_secs: i64,
    /// How far ahead a scheduled grant may start (0: not at all).
    pub max_schedule_ahead_secs: i64,
    pub max_root_holders: u32,
    /// The confidentiality declaration version grant holders must have
    /// signed (`staff.declaration_version`), if any.
    pub declaration_version: Option<String>,
    /// Days a holder's eligibility lasts from its last certification
    /// (`staff.recertify_days`); 0: it never lapses.
    pub recertify_days: u32,
    /// `[location]`: adequacy list, sub-processor notice, unknown countries.
    pub location: location::LocationRules,
    pub requests: Rate,
    pub validations: Rate,
    pub reports: Rate,
}

impl From<&Config> for Limits {
    fn from(c: &Config) -> Self {
        let l = &c.limits;
        Limits {
            max_duration_secs: c.grants.max_duration_secs,
            pending_ttl_secs: c.grants.pending_ttl_secs,
            break_glass_default_secs: c.grants.break_glass_default_secs,
            break_glass_max_secs: c.grants.break_glass_max_secs,
            max_schedule_ahead_secs: c.grants.max_schedule_ahead_secs,
            max_root_holders: c.staff.max_root_holders,
            declaration_version: c.staff.declaration_version.clone(),
            recertify_days: c.staff.recertify_days,
            location: location::LocationRules::from(c),
            requests: Rate {
                per_sec: l.requests_per_minute / 60.0,
                burst: l.request_burst,
            },
            validations: Rate {
                per_sec: l.validations_per_second,
                burst: l.validation_burst,
            },
            reports: Rate {
                per_sec: l.reports_per_second,
                burst: l.report_burst,
            },
        }
    }
}

pub struct Broker {
    ledger: Arc<Ledger>,
    clock: SharedClock,
    limits: Limits,
    trust_domain: String,
    expiry: Arc<ExpiryIndex>,
    rates: RateLimits,
    /// Which refusals are logged (a budget per principal).
    refusals: RefusalLog,
    gate: Arc<Gate>,
    /// Log streams open per principal ([`MAX_STREAMS_PER_PRINCIPAL`]).
    streams: Slots,
    /// One full chain check at a time (a scan of the whole log).
    chain_check: tokio::sync::Semaphore,
    /// Why the server decides nothing (its records disagree with its log);
    /// set once at start-up.
    fail_closed: std::sync::OnceLock<(String, u64)>,
    metrics: crate::metrics::Metrics,
    /// The breach register, rebuilt from the log ([`incidents`]).
    incidents: incidents::IncidentBook,
    /// Staff locations and the sub-processor register ([`location`]).
    location: location::LocationState,
    /// The register of processing, rebuilt from the log ([`processing`]).
    processing: processing::ProcessingBook,
    /// When each caller's entry-bundle read was last logged ([`tiles`]).
    bundle_reads: tiles::BundleReads,
    /// The approver groups, rebuilt from the log ([`groups`]).
    groups: groups::GroupBook,
}

/// Log streams (`StreamEntries`) one principal may hold open at once.
pub const MAX_STREAMS_PER_PRINCIPAL: usize = 8;

impl Broker {
    pub fn new(
        ledger: Arc<Ledger>,
        clock: SharedClock,
        limits: Limits,
        trust_domain: String,
        gate: Arc<Gate>,
    ) -> Self {
        let rates = RateLimits::new(limits.requests, limits.validations, limits.reports);
        let location = location::LocationState::new(limits.location.clone());
        Broker {
            location,
            ledger,
            clock,
            limits,
            trust_domain,
            expiry: Arc::new(ExpiryIndex::default()),
            rates,
            refusals: RefusalLog::default(),
            bundle_reads: tiles::BundleReads::default(),
            gate,
            streams: Slots::new(MAX_STREAMS_PER_PRINCIPAL),
            chain_check: tokio::sync::Semaphore::new(1),
            fail_closed: std::sync::OnceLock::new(),
            metrics: crate::metrics::Metrics::new(),
            incidents: incidents::IncidentBook::default(),
            processing: processing::ProcessingBook::default(),
            groups: groups::GroupBook::default(),
        }
    }

    /// The server's metrics (a cheap clone of one shared handle).
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.metrics
    }

    /// From now on only reads of the log are served (see
    /// [`crate::policy::serves_while_fail_closed`]); every other call is
    /// refused with `why`, and `audit check` reports it at entry `seq`.
    pub fn fail_closed(&self, why: String, seq: u64) {
        let _ = self.fail_closed.set((why, seq));
    }

    /// Why the server is fail-closed, if it is.
    pub fn fail_closed_reason(&self) -> Option<&str> {
        self.fail_closed.get().map(|(why, _)| why.as_str())
    }

    /// A slot for one more log stream of `caller`, or RESOURCE_EXHAUSTED
    /// when it holds [`MAX_STREAMS_PER_PRINCIPAL`] open.
    pub fn stream_slot(&self, caller: &Caller) -> Result<Slot> {
        let actor = caller.actor();
        self.streams.take(&actor.to_string()).ok_or_else(|| {
            BrokerError::Exhausted(format!(
                "{actor} already has {MAX_STREAMS_PER_PRINCIPAL} log streams open; close one \
                 (a follower that stops reading is dropped after 30 s)"
            ))
        })
    }

    pub fn gate(&self) -> &Arc<Gate> {
        &self.gate
    }

    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }

    pub fn expiry(&self) -> &Arc<ExpiryIndex> {
        &self.expiry
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    /// The limits the log is held to: the agreement's (two root holders,
    /// 24 h), not the configured ones, which may have been lowered since an
    /// entry was written.
    pub fn rules(&self) -> Rules {
        Rules::default()
    }
}

/// The receipt of a commit that always logs.
fn receipt(c: Option<Committed>) -> Result<Receipt> {
    c.map(|c| c.receipt)
        .ok_or_else(|| BrokerError::Store(LedgerError::Unavailable("no entry was written".into())))
}

fn not_found(id: &GrantId) -> BrokerError {
    BrokerError::NotFound(format!("grant {id} not found"))
}

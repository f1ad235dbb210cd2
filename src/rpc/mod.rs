//! The gRPC face of the broker: one tonic service per proto service, all on
//! [`Api`]. Each handler admits the caller (certificate → principal →
//! registry → policy), converts the request into typed values, calls the
//! broker and converts back. Refusals after admission are logged through
//! [`Api::finish`].

mod audit;
mod convert;
mod gate;
mod grants;
mod staff;
mod status;
mod tenants;

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use tonic::{Request, Status};

use crate::{
    broker::{Broker, BrokerError},
    identity::{IdentityError, Principal},
    policy::{Action, Caller},
};

/// Shared handler state: the broker.
#[derive(Clone)]
pub struct Api {
    broker: Arc<Broker>,
    /// Becomes true when the server starts shutting down; ends follow streams.
    stopping: tokio::sync::watch::Receiver<bool>,
}

impl Api {
    pub fn new(broker: Arc<Broker>, stopping: tokio::sync::watch::Receiver<bool>) -> Self {
        Api { broker, stopping }
    }

    /// Who is calling, and may they make this call? Refusals are logged.
    async fn admit<T>(&self, req: &Request<T>, action: Action) -> Result<Caller, Status> {
        let principal = peer_principal(req, self.broker.trust_domain());
        Ok(self.broker.admit(principal, action).await?)
    }

    /// Maps a broker result, logging a refusal on the way out.
    async fn finish<T>(
        &self,
        caller: &Caller,
        action: Action,
        result: Result<T, BrokerError>,
    ) -> Result<T, Status> {
        match result {
            Ok(v) => Ok(v),
            Err(e) => Err(self.broker.refuse(&caller.actor(), action, e).await.into()),
        }
    }
}

/// Fault injection for tests: while set, every ValidateGrant handler panics
/// at its start.
static HANDLER_PANIC: AtomicBool = AtomicBool::new(false);
/// Fault injection for tests: while set, every ValidateGrant handler panics
/// inside a store commit, holding the store's writer lock.
static LOCKED_PANIC: AtomicBool = AtomicBool::new(false);

/// Makes every ValidateGrant handler in this process panic (`true`) or work
/// again (`false`), as a bug would. For panic tests only; each such test
/// needs a test binary of its own, since this is process-wide.
#[doc(hidden)]
pub fn inject_handler_panic(on: bool) {
    HANDLER_PANIC.store(on, Ordering::Relaxed);
}

/// Makes every ValidateGrant handler panic while it holds the store's
/// writer lock (`true`). For panic tests only (see [`inject_handler_panic`]).
#[doc(hidden)]
pub fn inject_panic_under_store_lock(on: bool) {
    LOCKED_PANIC.store(on, Ordering::Relaxed);
}

impl Api {
    /// Panics if a test asked for it (see [`inject_handler_panic`]).
    async fn injected_panic(&self) {
        if HANDLER_PANIC.load(Ordering::Relaxed) {
            panic!("injected handler panic (secret=hunter2)");
        }
        if LOCKED_PANIC.load(Ordering::Relaxed) {
            let clock = self.broker.clock().clone();
            let _ = self
                .broker
                .store()
                .commit(&*clock, |_, _, _| -> Result<(), crate::store::StoreError> {
                    panic!("injected panic under the writer lock (secret=hunter2)")
                })
                .await;
        }
    }
}

/// The principal named by the leaf certificate the peer presented.
pub fn peer_principal<T>(req: &Request<T>, trust_domain: &str) -> Result<Principal, IdentityError> {
    let certs = req.peer_certs().ok_or(IdentityError::NoCertificate)?;
    let leaf = certs.first().ok_or(IdentityError::NoCertificate)?;
    Principal::from_certificate(leaf.as_ref(), trust_domain)
}

pub use self::{
    audit::AuditApi, convert::entry_from_pb, gate::GateApi, grants::GrantApi, staff::StaffApi,
    tenants::TenantApi,
};

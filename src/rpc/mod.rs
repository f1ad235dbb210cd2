//! The gRPC face of the broker: one tonic service per proto service, all on
//! [`Api`]. Each handler admits the caller (certificate → principal →
//! registry → policy), converts the request into a typed command
//! ([`commands`]), calls the service and converts back ([`convert`]).
//! [`status`] is the only place a gRPC status is made from an error. Refusals after admission are logged through
//! [`Api::finish`].

mod alerts;
mod audit;
pub mod commands;
mod convert;
mod gate;
mod grants;
mod incidents;
mod location;
mod notify;
mod processing;
mod screens;
mod staff;
mod status;
mod tenants;

use std::sync::Arc;

use tonic::{Request, Status};

use crate::{
    identity::{ClientCa, IdentityError, Principal},
    policy::{Action, Caller},
    service::{Broker, BrokerError},
};

/// Shared handler state: the broker.
#[derive(Clone)]
pub struct Api {
    broker: Arc<Broker>,
    /// The CA client certificates must be issued by directly (`tls.ca`).
    client_ca: Arc<ClientCa>,
    /// Becomes true when the server starts shutting down; ends follow streams.
    stopping: tokio::sync::watch::Receiver<bool>,
    notifier: Arc<crate::notify::Notifier>,
    #[cfg(any(test, feature = "fault-injection"))]
    faults: Arc<crate::faults::Faults>,
}

impl Api {
    pub fn new(
        broker: Arc<Broker>,
        client_ca: Arc<ClientCa>,
        stopping: tokio::sync::watch::Receiver<bool>,
        notifier: Arc<crate::notify::Notifier>,
    ) -> Self {
        Api {
            notifier,
            client_ca,
            #[cfg(any(test, feature = "fault-injection"))]
            faults: broker.ledger().faults().clone(),
            broker,
            stopping,
        }
    }

    /// Who is calling, and may they make this call? Refusals are logged.
    async fn admit<T>(&self, req: &Request<T>, action: Action) -> Result<Caller, Status> {
        let principal = peer_principal(req, &self.client_ca, self.broker.trust_domain());
        let caller = self.broker.admit(principal, action).await?;
        // For the request log line written by `metrics::RpcLayer`.
        if let Some(slot) = req.extensions().get::<crate::metrics::CallPrincipal>() {
            let _ = slot.0.set(caller.actor().to_string());
        }
        Ok(caller)
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

    /// Converts a request into its typed command, admits nothing new: a
    /// request that does not convert is refused (and logged) like any
    /// other refusal after admission.
    async fn command<'r, R, C>(
        &self,
        caller: &Caller,
        action: Action,
        req: &'r R,
    ) -> Result<C, Status>
    where
        C: TryFrom<&'r R, Error = BrokerError>,
    {
        match C::try_from(req) {
            Ok(c) => Ok(c),
            Err(e) => Err(self.broker.refuse(&caller.actor(), action, e).await.into()),
        }
    }
}

impl Api {
    /// Panics if a test asked for it (see [`crate::faults::Faults`]).
    #[cfg(any(test, feature = "fault-injection"))]
    async fn injected_panic(&self) {
        if self.faults.handlers_panic() {
            panic!("injected handler panic (secret=hunter2)");
        }
        if self.faults.panics_under_lock() {
            let clock = self.broker.clock().clone();
            let _ = self
                .broker
                .ledger()
                .commit(
                    &*clock,
                    |_, _, _| -> Result<(), crate::ledger::LedgerError> {
                        panic!("injected panic under the writer lock (secret=hunter2)")
                    },
                )
                .await;
        }
    }

    #[cfg(not(any(test, feature = "fault-injection")))]
    async fn injected_panic(&self) {}
}

/// The principal named by the leaf certificate the peer presented, which
/// `ca` must have issued directly.
pub fn peer_principal<T>(
    req: &Request<T>,
    ca: &ClientCa,
    trust_domain: &str,
) -> Result<Principal, IdentityError> {
    let certs = req.peer_certs().ok_or(IdentityError::NoCertificate)?;
    let leaf = certs.first().ok_or(IdentityError::NoCertificate)?;
    ca.issued_directly(&certs)?;
    Principal::from_certificate(leaf.as_ref(), trust_domain)
}

pub use self::processing::{record_from_pb, record_to_pb};
pub use self::{
    alerts::AlertApi, audit::AuditApi, convert::entry_from_pb, gate::GateApi, grants::GrantApi,
    incidents::IncidentApi, notify::NotifyApi, processing::ProcessingApi, screens::ScreenApi,
    staff::StaffApi, status::panic_status, tenants::TenantApi,
};

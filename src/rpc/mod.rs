//! The gRPC face of the broker: one tonic service per proto service, all on
//! [`Api`]. Each handler admits the caller (certificate → principal →
//! registry → policy), converts the request into typed values, calls the
//! broker and converts back. Refusals after admission are logged through
//! [`Api::finish`].

mod audit;
mod convert;
mod grants;
mod staff;
mod status;
mod tenants;

use std::sync::Arc;

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

/// The principal named by the leaf certificate the peer presented.
pub fn peer_principal<T>(req: &Request<T>, trust_domain: &str) -> Result<Principal, IdentityError> {
    let certs = req.peer_certs().ok_or(IdentityError::NoCertificate)?;
    let leaf = certs.first().ok_or(IdentityError::NoCertificate)?;
    Principal::from_certificate(leaf.as_ref(), trust_domain)
}

pub use self::{
    audit::AuditApi, convert::entry_from_pb, grants::GrantApi, staff::StaffApi, tenants::TenantApi,
};

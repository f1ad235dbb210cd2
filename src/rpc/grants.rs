//! `GrantService`: the grant lifecycle, tenant validation and access records.

use tonic::{Request, Response, Status};

use super::{Api, convert};
use crate::{
    broker::BrokerError,
    grant::Grant,
    identity::Name,
    pb::{self, grant_service_server::GrantService, validate_grant_request::Subject},
    policy::{self, Action, Caller},
};

/// The `GrantService` implementation.
#[derive(Clone)]
pub struct GrantApi(pub Api);

#[tonic::async_trait]
impl GrantService for GrantApi {
    async fn request_grant(
        &self,
        req: Request<pb::RequestGrantRequest>,
    ) -> Result<Response<pb::Grant>, Status> {
        let api = &self.0;
        let caller = api.admit(&req, Action::RequestGrant).await?;
        let r = req.into_inner();
        let result = api
            .broker
            .request_grant(&caller, &r.tenant, &r.reason, &r.ticket, r.duration_seconds)
            .await;
        let g = api.finish(&caller, Action::RequestGrant, result).await?;
        Ok(Response::new(api.with_token(
            &caller,
            &g.0,
            convert::receipted_grant(&g.0, g.1),
        )))
    }

    async fn approve_grant(
        &self,
        req: Request<pb::DecideGrantRequest>,
    ) -> Result<Response<pb::Grant>, Status> {
        let api = &self.0;
        let caller = api.admit(&req, Action::ApproveGrant).await?;
        let r = req.into_inner();
        let result = api.broker.decide(&caller, &r.grant_id, true, &r.note).await;
        let g = api.finish(&caller, Action::ApproveGrant, result).await?;
        Ok(Response::new(convert::receipted_grant(&g.0, g.1)))
    }

    async fn deny_grant(
        &self,
        req: Request<pb::DecideGrantRequest>,
    ) -> Result<Response<pb::Grant>, Status> {
        let api = &self.0;
        let caller = api.admit(&req, Action::DenyGrant).await?;
        let r = req.into_inner();
        let result = api
            .broker
            .decide(&caller, &r.grant_id, false, &r.note)
            .await;
        let g = api.finish(&caller, Action::DenyGrant, result).await?;
        Ok(Response::new(convert::receipted_grant(&g.0, g.1)))
    }

    async fn list_grants(
        &self,
        req: Request<pb::ListGrantsRequest>,
    ) -> Result<Response<pb::ListGrantsResponse>, Status> {
        let api = &self.0;
        let caller = api.admit(&req, Action::ListGrants).await?;
        let r = req.get_ref();
        let result = match list_filter("tenant", &r.tenant).and(list_filter("holder", &r.holder)) {
            Ok(()) => api
                .broker
                .list_grants(&caller, &r.tenant, &r.holder, r.live_only),
            Err(e) => Err(e),
        };
        let grants = api.finish(&caller, Action::ListGrants, result).await?;
        Ok(Response::new(pb::ListGrantsResponse {
            grants: grants.iter().map(convert::grant_to_pb).collect(),
        }))
    }

    async fn get_grant(
        &self,
        req: Request<pb::GetGrantRequest>,
    ) -> Result<Response<pb::Grant>, Status> {
        let api = &self.0;
        let caller = api.admit(&req, Action::GetGrant).await?;
        let result = api.broker.get_grant(&caller, &req.get_ref().grant_id);
        let g = api.finish(&caller, Action::GetGrant, result).await?;
        // The read may have seen a group still being flushed (sled shows a
        // transaction before it is on disk): a token is only handed out for
        // a grant that is durably active, or it could outlive a crash.
        if policy::may_use(&caller, &g) && api.broker.store().flush().await.is_err() {
            return Ok(Response::new(convert::grant_to_pb(&g)));
        }
        Ok(Response::new(api.with_token(
            &caller,
            &g,
            convert::grant_to_pb(&g),
        )))
    }

    async fn revoke_grant(
        &self,
        req: Request<pb::RevokeGrantRequest>,
    ) -> Result<Response<pb::Grant>, Status> {
        let api = &self.0;
        let caller = api.admit(&req, Action::RevokeGrant).await?;
        let r = req.into_inner();
        let result = api.broker.revoke(&caller, &r.grant_id, &r.note).await;
        let g = api.finish(&caller, Action::RevokeGrant, result).await?;
        Ok(Response::new(convert::receipted_grant(&g.0, g.1)))
    }

    async fn release_grant(
        &self,
        req: Request<pb::ReleaseGrantRequest>,
    ) -> Result<Response<pb::Grant>, Status> {
        let api = &self.0;
        let caller = api.admit(&req, Action::ReleaseGrant).await?;
        let result = api.broker.release(&caller, &req.get_ref().grant_id).await;
        let g = api.finish(&caller, Action::ReleaseGrant, result).await?;
        Ok(Response::new(convert::receipted_grant(&g.0, g.1)))
    }

    async fn validate_grant(
        &self,
        req: Request<pb::ValidateGrantRequest>,
    ) -> Result<Response<pb::ValidateGrantResponse>, Status> {
        let api = &self.0;
        api.injected_panic().await;
        let caller = api.admit(&req, Action::ValidateGrant).await?;
        // A blank subject names nobody: refused like a missing one rather
        // than answered (and logged) as a decision.
        let (by_grant, by_staff) = match &req.get_ref().subject {
            Some(Subject::GrantId(id)) if !id.trim().is_empty() => (Some(id.as_str()), None),
            Some(Subject::Staff(s)) if !s.trim().is_empty() => (None, Some(s.as_str())),
            _ => (None, None),
        };
        let result = api.broker.validate(&caller, by_grant, by_staff).await;
        let v = api.finish(&caller, Action::ValidateGrant, result).await?;
        let g = v.grant.as_ref();
        Ok(Response::new(pb::ValidateGrantResponse {
            allowed: v.allowed.is_ok(),
            deny_reason: v
                .allowed
                .err()
                .map(|r| convert::deny_to_pb(r) as i32)
                .unwrap_or(0),
            grant_id: g.map(|g| g.id.to_string()).unwrap_or_default(),
            holder: g.map(|g| g.holder.to_string()).unwrap_or_default(),
            expires_at_ms: g
                .and_then(|g| g.expires_at)
                .map(|t| t.millis())
                .unwrap_or(0),
            log_seq: v.log_seq,
            receipt: convert::receipt_to_pb(v.receipt),
        }))
    }

    async fn record_access(
        &self,
        req: Request<pb::RecordAccessRequest>,
    ) -> Result<Response<pb::RecordAccessResponse>, Status> {
        let api = &self.0;
        let caller = api.admit(&req, Action::RecordAccess).await?;
        let r = req.into_inner();
        let result = api
            .broker
            .record_access(
                &caller,
                &r.grant_id,
                &r.action,
                &r.resource,
                r.accessed_at_ms,
                &r.report_id,
            )
            .await;
        let rec = api.finish(&caller, Action::RecordAccess, result).await?;
        Ok(Response::new(pb::RecordAccessResponse {
            log_seq: rec.seq,
            entry_hash: hex::encode(rec.hash),
            duplicate: rec.duplicate,
            within_grant: rec.within_grant,
            receipt: convert::receipt_to_pb(rec.receipt),
        }))
    }

    async fn issue_grant_certificate(
        &self,
        req: Request<pb::IssueGrantCertificateRequest>,
    ) -> Result<Response<pb::GrantCertificate>, Status> {
        let api = &self.0;
        let caller = api.admit(&req, Action::IssueGrantCertificate).await?;
        let r = req.into_inner();
        let result = api
            .broker
            .issue_grant_certificate(&caller, &r.grant_id, &r.csr_pem)
            .await;
        let ((_, issued), receipt) = api
            .finish(&caller, Action::IssueGrantCertificate, result)
            .await?;
        Ok(Response::new(pb::GrantCertificate {
            certificate_pem: issued.certificate_pem,
            grant_ca_pem: api.broker.gate().grant_ca_pem().to_owned(),
            expires_at_ms: issued.not_after.millis(),
            serial: issued.serial,
            receipt: convert::receipt_to_pb(receipt),
        }))
    }
}

impl Api {
    /// Adds the grant's signed token for its holder, while it is active.
    fn with_token(&self, caller: &Caller, g: &Grant, mut pb: pb::Grant) -> pb::Grant {
        if policy::may_use(caller, g) {
            pb.token = self.broker.gate().token(g).unwrap_or_default();
        }
        pb
    }
}

/// A ListGrants filter is empty (no filter) or a name; anything else would
/// silently match nothing.
fn list_filter(field: &str, value: &str) -> Result<(), BrokerError> {
    if value.is_empty() {
        return Ok(());
    }
    Name::parse(value)
        .map(drop)
        .map_err(|e| BrokerError::InvalidArgument(format!("{field} filter: {e}")))
}

//! `GrantService`: the grant lifecycle, tenant validation and access records.

use tonic::{Request, Response, Status};

use super::{Api, convert};
use crate::{
    domain::Grant,
    pb::{self, grant_service_server::GrantService, validate_grant_request::Subject},
    policy::{self, Action, Caller},
    service::{BrokerError, commands::ValidateGrant},
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
        let cmd = api
            .command(&caller, Action::RequestGrant, req.get_ref())
            .await?;
        let result = api.broker.request_grant(&caller, cmd).await;
        let g = api.finish(&caller, Action::RequestGrant, result).await?;
        Ok(Response::new(api.with_token(
            &caller,
            &g.0,
            convert::receipted_grant(&g.0, Some(g.1)),
        )))
    }

    async fn approve_grant(
        &self,
        req: Request<pb::DecideGrantRequest>,
    ) -> Result<Response<pb::Grant>, Status> {
        let api = &self.0;
        let caller = api.admit(&req, Action::ApproveGrant).await?;
        let cmd = api
            .command(&caller, Action::ApproveGrant, req.get_ref())
            .await?;
        let result = api.broker.decide(&caller, cmd, true).await;
        let g = api.finish(&caller, Action::ApproveGrant, result).await?;
        Ok(Response::new(convert::receipted_grant(&g.0, Some(g.1))))
    }

    async fn deny_grant(
        &self,
        req: Request<pb::DecideGrantRequest>,
    ) -> Result<Response<pb::Grant>, Status> {
        let api = &self.0;
        let caller = api.admit(&req, Action::DenyGrant).await?;
        let cmd = api
            .command(&caller, Action::DenyGrant, req.get_ref())
            .await?;
        let result = api.broker.decide(&caller, cmd, false).await;
        let g = api.finish(&caller, Action::DenyGrant, result).await?;
        Ok(Response::new(convert::receipted_grant(&g.0, Some(g.1))))
    }

    async fn list_grants(
        &self,
        req: Request<pb::ListGrantsRequest>,
    ) -> Result<Response<pb::ListGrantsResponse>, Status> {
        let api = &self.0;
        let caller = api.admit(&req, Action::ListGrants).await?;
        let filter = api
            .command(&caller, Action::ListGrants, req.get_ref())
            .await?;
        let result = api.broker.list_grants(&caller, &filter);
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
        let result = super::commands::grant_id(&req.get_ref().grant_id)
            .and_then(|id| api.broker.get_grant(&caller, &id));
        let g = api.finish(&caller, Action::GetGrant, result).await?;
        // The read may have seen a group still being flushed (sled shows a
        // transaction before it is on disk): a token is only handed out for
        // a grant that is durably active, or it could outlive a crash.
        if policy::may_use(&caller, &g) && api.broker.ledger().flush().await.is_err() {
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
        let cmd = api
            .command(&caller, Action::RevokeGrant, req.get_ref())
            .await?;
        let result = api.broker.revoke(&caller, cmd).await;
        let g = api.finish(&caller, Action::RevokeGrant, result).await?;
        Ok(Response::new(convert::receipted_grant(&g.0, Some(g.1))))
    }

    async fn release_grant(
        &self,
        req: Request<pb::ReleaseGrantRequest>,
    ) -> Result<Response<pb::Grant>, Status> {
        let api = &self.0;
        let caller = api.admit(&req, Action::ReleaseGrant).await?;
        let result = match super::commands::grant_id(&req.get_ref().grant_id) {
            Ok(id) => api.broker.release(&caller, &id).await,
            Err(e) => Err(e),
        };
        let g = api.finish(&caller, Action::ReleaseGrant, result).await?;
        Ok(Response::new(convert::receipted_grant(&g.0, Some(g.1))))
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
            Some(Subject::GrantId(id)) => (Some(id.as_str()), None),
            Some(Subject::Staff(s)) => (None, Some(s.as_str())),
            None => (None, None),
        };
        let resource = match req.get_ref().resource.as_str() {
            "" => Ok(None),
            r => crate::domain::ScopedResource::parse(r)
                .map(Some)
                .map_err(|e| BrokerError::InvalidArgument(e.to_string())),
        };
        let result = match (
            ValidateGrant::parse(by_grant, by_staff, api.broker.trust_domain()),
            resource,
        ) {
            (_, Err(e)) => Err(e),
            (Some(cmd), Ok(resource)) => {
                api.broker
                    .validate(&caller, ValidateGrant { resource, ..cmd })
                    .await
            }
            (None, _) => Err(BrokerError::InvalidArgument(
                "give either a grant id or a staff name to validate".into(),
            )),
        };
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
            receipt: convert::receipt_to_pb(Some(v.receipt)),
            scopes: g.map(|g| g.scopes.strings()).unwrap_or_default(),
        }))
    }

    async fn record_access(
        &self,
        req: Request<pb::RecordAccessRequest>,
    ) -> Result<Response<pb::RecordAccessResponse>, Status> {
        let api = &self.0;
        let caller = api.admit(&req, Action::RecordAccess).await?;
        let cmd = api
            .command(&caller, Action::RecordAccess, req.get_ref())
            .await?;
        let result = api.broker.record_access(&caller, cmd).await;
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
        let cmd = api
            .command(&caller, Action::IssueGrantCertificate, req.get_ref())
            .await?;
        let result = api.broker.issue_grant_certificate(&caller, cmd).await;
        let ((grant, issued), receipt) = api
            .finish(&caller, Action::IssueGrantCertificate, result)
            .await?;
        Ok(Response::new(pb::GrantCertificate {
            certificate_pem: issued.certificate_pem,
            grant_ca_pem: api.broker.gate().grant_ca_pem().to_owned(),
            expires_at_ms: issued.not_after.millis(),
            serial: issued.serial,
            receipt: convert::receipt_to_pb(Some(receipt)),
            scopes: grant.scopes.strings(),
        }))
    }

    async fn review_grant(
        &self,
        req: Request<pb::ReviewGrantRequest>,
    ) -> Result<Response<pb::Grant>, Status> {
        let api = &self.0;
        let caller = api.admit(&req, Action::ReviewGrant).await?;
        let cmd = api
            .command(&caller, Action::ReviewGrant, req.get_ref())
            .await?;
        let result = api.broker.review_grant(&caller, cmd).await;
        let g = api.finish(&caller, Action::ReviewGrant, result).await?;
        Ok(Response::new(convert::receipted_grant(&g.0, Some(g.1))))
    }
}

impl Api {
    /// Adds the grant's signed token for its holder, while it is active.
    fn with_token(&self, caller: &Caller, g: &Grant, mut pb: pb::Grant) -> pb::Grant {
        if policy::may_use(caller, g) {
            let holder_at = self.broker.location().location(&g.holder);
            pb.token = self.broker.gate().token(g, &holder_at).unwrap_or_default();
        }
        pb
    }
}

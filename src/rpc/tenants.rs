//! `TenantService`: the tenant registry.

use tonic::{Request, Response, Status};

use super::{Api, convert};
use crate::{
    broker::BrokerError,
    pb::{self, tenant_service_server::TenantService},
    policy::Action,
};

/// The `TenantService` implementation.
#[derive(Clone)]
pub struct TenantApi(pub Api);

#[tonic::async_trait]
impl TenantService for TenantApi {
    async fn add_tenant(
        &self,
        req: Request<pb::AddTenantRequest>,
    ) -> Result<Response<pb::Tenant>, Status> {
        let api = &self.0;
        let caller = api.admit(&req, Action::AddTenant).await?;
        let r = req.into_inner();
        let result = match convert::approval_from_pb(r.approval) {
            Ok(a) => {
                api.broker
                    .add_tenant(&caller, &r.name, a, r.require_ticket)
                    .await
            }
            Err(s) => Err(BrokerError::InvalidArgument(s.message().to_owned())),
        };
        let t = api.finish(&caller, Action::AddTenant, result).await?;
        Ok(Response::new(pb::Tenant {
            receipt: convert::receipt_to_pb(t.1),
            ..convert::tenant_to_pb(&t.0)
        }))
    }

    async fn update_tenant(
        &self,
        req: Request<pb::UpdateTenantRequest>,
    ) -> Result<Response<pb::Tenant>, Status> {
        let api = &self.0;
        let caller = api.admit(&req, Action::UpdateTenant).await?;
        let r = req.into_inner();
        let result = match convert::approval_from_pb(r.approval) {
            // An update that changes nothing would only add a log entry.
            Ok(None) if r.require_ticket.is_none() => Err(BrokerError::InvalidArgument(
                "nothing to update: give an approval policy or require_ticket".into(),
            )),
            Ok(a) => {
                api.broker
                    .update_tenant(&caller, &r.name, a, r.require_ticket)
                    .await
            }
            Err(s) => Err(BrokerError::InvalidArgument(s.message().to_owned())),
        };
        let t = api.finish(&caller, Action::UpdateTenant, result).await?;
        Ok(Response::new(pb::Tenant {
            receipt: convert::receipt_to_pb(t.1),
            ..convert::tenant_to_pb(&t.0)
        }))
    }

    async fn list_tenants(
        &self,
        req: Request<pb::ListTenantsRequest>,
    ) -> Result<Response<pb::ListTenantsResponse>, Status> {
        let api = &self.0;
        let caller = api.admit(&req, Action::ListTenants).await?;
        let result = api.broker.list_tenants();
        let tenants = api.finish(&caller, Action::ListTenants, result).await?;
        Ok(Response::new(pb::ListTenantsResponse {
            tenants: tenants.iter().map(convert::tenant_to_pb).collect(),
        }))
    }
}

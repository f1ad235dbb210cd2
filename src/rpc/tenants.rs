//! `TenantService`: the tenant registry.

use tonic::{Request, Response, Status};

use super::{Api, convert};
use crate::{
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
        let cmd = api
            .command(&caller, Action::AddTenant, req.get_ref())
            .await?;
        let result = api.broker.add_tenant(&caller, cmd).await;
        let t = api.finish(&caller, Action::AddTenant, result).await?;
        Ok(Response::new(pb::Tenant {
            receipt: convert::receipt_to_pb(Some(t.1)),
            ..api.tenant_now_pb(&t.0)
        }))
    }

    async fn update_tenant(
        &self,
        req: Request<pb::UpdateTenantRequest>,
    ) -> Result<Response<pb::Tenant>, Status> {
        let api = &self.0;
        let caller = api.admit(&req, Action::UpdateTenant).await?;
        let cmd = api
            .command(&caller, Action::UpdateTenant, req.get_ref())
            .await?;
        let result = api.broker.update_tenant(&caller, cmd).await;
        let t = api.finish(&caller, Action::UpdateTenant, result).await?;
        Ok(Response::new(pb::Tenant {
            receipt: convert::receipt_to_pb(Some(t.1)),
            ..api.tenant_now_pb(&t.0)
        }))
    }

    async fn set_tenant_justification(
        &self,
        req: Request<pb::SetTenantJustificationRequest>,
    ) -> Result<Response<pb::Tenant>, Status> {
        let api = &self.0;
        let caller = api.admit(&req, Action::SetTenantJustification).await?;
        let cmd = api
            .command(&caller, Action::SetTenantJustification, req.get_ref())
            .await?;
        let result = api.broker.set_tenant_justification(&caller, cmd).await;
        let t = api
            .finish(&caller, Action::SetTenantJustification, result)
            .await?;
        Ok(Response::new(pb::Tenant {
            receipt: convert::receipt_to_pb(Some(t.1)),
            ..api.tenant_now_pb(&t.0)
        }))
    }

    async fn set_tenant_access_limit(
        &self,
        req: Request<pb::SetTenantAccessLimitRequest>,
    ) -> Result<Response<pb::Tenant>, Status> {
        let api = &self.0;
        let caller = api.admit(&req, Action::SetTenantAccessLimit).await?;
        let cmd = api
            .command(&caller, Action::SetTenantAccessLimit, req.get_ref())
            .await?;
        let result = api.broker.set_tenant_access_limit(&caller, cmd).await;
        let t = api
            .finish(&caller, Action::SetTenantAccessLimit, result)
            .await?;
        Ok(Response::new(pb::Tenant {
            receipt: convert::receipt_to_pb(Some(t.1)),
            ..api.tenant_now_pb(&t.0)
        }))
    }

    async fn terminate_tenant(
        &self,
        req: Request<pb::TerminateTenantRequest>,
    ) -> Result<Response<pb::TerminateTenantResponse>, Status> {
        let api = &self.0;
        let caller = api.admit(&req, Action::TerminateTenant).await?;
        let cmd = api
            .command(&caller, Action::TerminateTenant, req.get_ref())
            .await?;
        let result = api.broker.terminate_tenant(&caller, cmd).await;
        let t = api.finish(&caller, Action::TerminateTenant, result).await?;
        Ok(Response::new(pb::TerminateTenantResponse {
            tenant: Some(convert::tenant_to_pb(&t.tenant)),
            revoked_grants: t.revoked.iter().map(|g| g.to_string()).collect(),
            tenant_key: t.key_hex.unwrap_or_default(),
        }))
    }

    async fn shred_tenant(
        &self,
        req: Request<pb::ShredTenantRequest>,
    ) -> Result<Response<pb::Tenant>, Status> {
        let api = &self.0;
        let caller = api.admit(&req, Action::ShredTenant).await?;
        let cmd = api
            .command(&caller, Action::ShredTenant, req.get_ref())
            .await?;
        let result = api.broker.shred_tenant(&caller, cmd).await;
        let t = api.finish(&caller, Action::ShredTenant, result).await?;
        Ok(Response::new(pb::Tenant {
            receipt: convert::receipt_to_pb(Some(t.1)),
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
        let reg = api.broker.location().snapshot();
        Ok(Response::new(pb::ListTenantsResponse {
            tenants: tenants.iter().map(|t| api.tenant_pb(&reg, t)).collect(),
        }))
    }

    async fn set_tenant_countries(
        &self,
        req: Request<pb::SetTenantCountriesRequest>,
    ) -> Result<Response<pb::Tenant>, Status> {
        self.0.set_tenant_countries(req).await
    }

    async fn object_to_subprocessor(
        &self,
        req: Request<pb::ObjectToSubprocessorRequest>,
    ) -> Result<Response<pb::Tenant>, Status> {
        self.0.object_to_subprocessor(req).await
    }

    async fn add_subprocessor(
        &self,
        req: Request<pb::AddSubprocessorRequest>,
    ) -> Result<Response<pb::Subprocessor>, Status> {
        self.0.add_subprocessor(req).await
    }

    async fn list_subprocessors(
        &self,
        req: Request<pb::ListSubprocessorsRequest>,
    ) -> Result<Response<pb::ListSubprocessorsResponse>, Status> {
        self.0.list_subprocessors(req).await
    }

    async fn set_tenant_break_glass(
        &self,
        req: Request<pb::SetTenantBreakGlassRequest>,
    ) -> Result<Response<pb::Tenant>, Status> {
        let api = &self.0;
        let caller = api.admit(&req, Action::SetTenantBreakGlass).await?;
        let cmd = api
            .command(&caller, Action::SetTenantBreakGlass, req.get_ref())
            .await?;
        let result = api.broker.set_tenant_break_glass(&caller, cmd).await;
        let t = api
            .finish(&caller, Action::SetTenantBreakGlass, result)
            .await?;
        Ok(Response::new(pb::Tenant {
            receipt: convert::receipt_to_pb(Some(t.1)),
            ..api.tenant_now_pb(&t.0)
        }))
    }
}

//! `StaffService`: enrol, offboard, re-certify, list; approver groups
//! (set, remove, list); and `WhoAmI`.

use tonic::{Request, Response, Status};

use super::{Api, convert};
use crate::{
    pb::{self, staff_service_server::StaffService},
    policy::{Action, Caller},
};

/// The `StaffService` implementation.
#[derive(Clone)]
pub struct StaffApi(pub Api);

#[tonic::async_trait]
impl StaffService for StaffApi {
    async fn add_staff(
        &self,
        req: Request<pb::AddStaffRequest>,
    ) -> Result<Response<pb::Staff>, Status> {
        let api = &self.0;
        let caller = api.admit(&req, Action::AddStaff).await?;
        let cmd = api
            .command(&caller, Action::AddStaff, req.get_ref())
            .await?;
        let result = api.broker.add_staff(&caller, cmd).await;
        let (rec, receipt) = api.finish(&caller, Action::AddStaff, result).await?;
        Ok(Response::new(pb::Staff {
            receipt: convert::receipt_to_pb(Some(receipt)),
            ..api.staff_pb(&rec)
        }))
    }

    async fn offboard_staff(
        &self,
        req: Request<pb::OffboardStaffRequest>,
    ) -> Result<Response<pb::OffboardStaffResponse>, Status> {
        let api = &self.0;
        let caller = api.admit(&req, Action::OffboardStaff).await?;
        let cmd = api
            .command(&caller, Action::OffboardStaff, req.get_ref())
            .await?;
        let result = api.broker.offboard_staff(&caller, cmd).await;
        let ((rec, revoked), receipt) = api.finish(&caller, Action::OffboardStaff, result).await?;
        Ok(Response::new(pb::OffboardStaffResponse {
            staff: Some(api.staff_pb(&rec)),
            revoked_grant_ids: revoked.iter().map(|id| id.to_string()).collect(),
            receipt: convert::receipt_to_pb(Some(receipt)),
        }))
    }

    async fn record_declaration(
        &self,
        req: Request<pb::RecordDeclarationRequest>,
    ) -> Result<Response<pb::Staff>, Status> {
        let api = &self.0;
        let caller = api.admit(&req, Action::RecordDeclaration).await?;
        let cmd = api
            .command(&caller, Action::RecordDeclaration, req.get_ref())
            .await?;
        let result = api.broker.record_declaration(&caller, cmd).await;
        let (rec, receipt) = api
            .finish(&caller, Action::RecordDeclaration, result)
            .await?;
        Ok(Response::new(pb::Staff {
            receipt: convert::receipt_to_pb(Some(receipt)),
            ..api.staff_pb(&rec)
        }))
    }

    async fn recertify_staff(
        &self,
        req: Request<pb::RecertifyStaffRequest>,
    ) -> Result<Response<pb::Staff>, Status> {
        let api = &self.0;
        let caller = api.admit(&req, Action::RecertifyStaff).await?;
        let cmd = api
            .command(&caller, Action::RecertifyStaff, req.get_ref())
            .await?;
        let result = api.broker.recertify_staff(&caller, cmd).await;
        let (rec, receipt) = api.finish(&caller, Action::RecertifyStaff, result).await?;
        Ok(Response::new(pb::Staff {
            receipt: convert::receipt_to_pb(Some(receipt)),
            ..api.staff_pb(&rec)
        }))
    }

    async fn locate_staff(
        &self,
        req: Request<pb::LocateStaffRequest>,
    ) -> Result<Response<pb::LocateStaffResponse>, Status> {
        self.0.locate_staff(req).await
    }

    async fn set_approver_group(
        &self,
        req: Request<pb::SetApproverGroupRequest>,
    ) -> Result<Response<pb::ApproverGroup>, Status> {
        let api = &self.0;
        let caller = api.admit(&req, Action::SetApproverGroup).await?;
        let cmd = api
            .command(&caller, Action::SetApproverGroup, req.get_ref())
            .await?;
        let result = api.broker.set_approver_group(&caller, cmd).await;
        let (g, receipt) = api
            .finish(&caller, Action::SetApproverGroup, result)
            .await?;
        Ok(Response::new(pb::ApproverGroup {
            receipt: convert::receipt_to_pb(Some(receipt)),
            ..convert::approver_group_to_pb(&g)
        }))
    }

    async fn remove_approver_group(
        &self,
        req: Request<pb::RemoveApproverGroupRequest>,
    ) -> Result<Response<pb::RemoveApproverGroupResponse>, Status> {
        let api = &self.0;
        let caller = api.admit(&req, Action::RemoveApproverGroup).await?;
        let cmd = api
            .command(&caller, Action::RemoveApproverGroup, req.get_ref())
            .await?;
        let result = api.broker.remove_approver_group(&caller, cmd).await;
        let (name, receipt) = api
            .finish(&caller, Action::RemoveApproverGroup, result)
            .await?;
        Ok(Response::new(pb::RemoveApproverGroupResponse {
            name: name.to_string(),
            receipt: convert::receipt_to_pb(Some(receipt)),
        }))
    }

    async fn list_approver_groups(
        &self,
        req: Request<pb::ListApproverGroupsRequest>,
    ) -> Result<Response<pb::ListApproverGroupsResponse>, Status> {
        let api = &self.0;
        api.admit(&req, Action::ListApproverGroups).await?;
        let groups = api.broker.list_approver_groups();
        Ok(Response::new(pb::ListApproverGroupsResponse {
            groups: groups.iter().map(convert::approver_group_to_pb).collect(),
        }))
    }

    async fn list_staff(
        &self,
        req: Request<pb::ListStaffRequest>,
    ) -> Result<Response<pb::ListStaffResponse>, Status> {
        let api = &self.0;
        let caller = api.admit(&req, Action::ListStaff).await?;
        let result = api.broker.list_staff();
        let staff = api.finish(&caller, Action::ListStaff, result).await?;
        Ok(Response::new(pb::ListStaffResponse {
            staff: staff.iter().map(|s| api.staff_pb(s)).collect(),
        }))
    }

    async fn who_am_i(
        &self,
        req: Request<pb::WhoAmIRequest>,
    ) -> Result<Response<pb::WhoAmIResponse>, Status> {
        let api = &self.0;
        let caller = api.admit(&req, Action::WhoAmI).await?;
        let td = api.broker.trust_domain();
        let principal = caller.principal();
        Ok(Response::new(pb::WhoAmIResponse {
            principal: principal.uri(td),
            kind: principal.kind.as_str().to_owned(),
            name: principal.name.to_string(),
            role: match &caller {
                Caller::Staff { role, .. } => convert::role_to_pb(*role) as i32,
                Caller::Tenant { .. } => 0,
            },
        }))
    }
}

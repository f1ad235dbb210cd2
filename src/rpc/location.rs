//! The location calls' gRPC face (`LocateStaff`, `SetTenantCountries`,
//! `ObjectToSubprocessor`, `AddSubprocessor`, `ListSubprocessors`; their
//! trait methods in [`super::staff`] and [`super::tenants`] call these), and
//! the location fields of `Staff` and `Tenant` messages, read from the
//! broker's register ([`crate::service::location`]).

use tonic::{Request, Response, Status};

use super::{Api, convert};
use crate::{
    domain::{StaffRecord, Subprocessor, TenantRecord},
    pb,
    policy::Action,
    service::location::Register,
};

impl Api {
    /// A `Staff` message with the person's recorded location.
    pub(super) fn staff_pb(&self, rec: &StaffRecord) -> pb::Staff {
        let loc = self.broker.location().location(&rec.name);
        pb::Staff {
            country: loc.country_str().to_owned(),
            organisation: loc.organisation.to_string(),
            recertify_due_at_ms: self.broker.certification_due(rec).map_or(0, |t| t.millis()),
            ..convert::staff_to_pb(rec, self.broker.trust_domain())
        }
    }

    /// A `Tenant` message with its effective countries and objections.
    pub(super) fn tenant_pb(&self, reg: &Register, rec: &TenantRecord) -> pb::Tenant {
        let (allowed, own) = reg.allowed_countries(self.broker.location().rules(), &rec.name);
        pb::Tenant {
            allowed_countries: allowed.iter().map(|c| c.to_string()).collect(),
            own_countries: own,
            objections: reg
                .objections(&rec.name)
                .into_iter()
                .map(|(n, t)| pb::TenantObjection {
                    subprocessor: n.to_string(),
                    objected_at_ms: t.millis(),
                })
                .collect(),
            ..convert::tenant_to_pb(rec)
        }
    }

    pub(super) fn tenant_now_pb(&self, rec: &TenantRecord) -> pb::Tenant {
        self.tenant_pb(&self.broker.location().snapshot(), rec)
    }

    pub(super) async fn locate_staff(
        &self,
        req: Request<pb::LocateStaffRequest>,
    ) -> Result<Response<pb::LocateStaffResponse>, Status> {
        let caller = self.admit(&req, Action::LocateStaff).await?;
        let cmd = self
            .command(&caller, Action::LocateStaff, req.get_ref())
            .await?;
        let result = self.broker.locate_staff(&caller, cmd).await;
        let ((rec, _, revoked), receipt) =
            self.finish(&caller, Action::LocateStaff, result).await?;
        Ok(Response::new(pb::LocateStaffResponse {
            staff: Some(self.staff_pb(&rec)),
            revoked_grant_ids: revoked.iter().map(|id| id.to_string()).collect(),
            receipt: convert::receipt_to_pb(Some(receipt)),
        }))
    }

    pub(super) async fn set_tenant_countries(
        &self,
        req: Request<pb::SetTenantCountriesRequest>,
    ) -> Result<Response<pb::Tenant>, Status> {
        let caller = self.admit(&req, Action::SetTenantCountries).await?;
        let cmd = self
            .command(&caller, Action::SetTenantCountries, req.get_ref())
            .await?;
        let result = self.broker.set_tenant_countries(&caller, cmd).await;
        let ((rec, _), receipt) = self
            .finish(&caller, Action::SetTenantCountries, result)
            .await?;
        Ok(Response::new(pb::Tenant {
            receipt: convert::receipt_to_pb(Some(receipt)),
            ..self.tenant_now_pb(&rec)
        }))
    }

    pub(super) async fn object_to_subprocessor(
        &self,
        req: Request<pb::ObjectToSubprocessorRequest>,
    ) -> Result<Response<pb::Tenant>, Status> {
        let caller = self.admit(&req, Action::ObjectToSubprocessor).await?;
        let cmd = self
            .command(&caller, Action::ObjectToSubprocessor, req.get_ref())
            .await?;
        let result = self.broker.object_to_subprocessor(&caller, cmd).await;
        let ((rec, _), receipt) = self
            .finish(&caller, Action::ObjectToSubprocessor, result)
            .await?;
        Ok(Response::new(pb::Tenant {
            receipt: convert::receipt_to_pb(Some(receipt)),
            ..self.tenant_now_pb(&rec)
        }))
    }

    pub(super) async fn add_subprocessor(
        &self,
        req: Request<pb::AddSubprocessorRequest>,
    ) -> Result<Response<pb::Subprocessor>, Status> {
        let caller = self.admit(&req, Action::AddSubprocessor).await?;
        let cmd = self
            .command(&caller, Action::AddSubprocessor, req.get_ref())
            .await?;
        let result = self.broker.add_subprocessor(&caller, cmd).await;
        let (sp, receipt) = self
            .finish(&caller, Action::AddSubprocessor, result)
            .await?;
        Ok(Response::new(pb::Subprocessor {
            receipt: convert::receipt_to_pb(Some(receipt)),
            ..subprocessor_pb(&sp)
        }))
    }

    pub(super) async fn list_subprocessors(
        &self,
        req: Request<pb::ListSubprocessorsRequest>,
    ) -> Result<Response<pb::ListSubprocessorsResponse>, Status> {
        let _caller = self.admit(&req, Action::ListSubprocessors).await?;
        Ok(Response::new(pb::ListSubprocessorsResponse {
            subprocessors: self
                .broker
                .list_subprocessors()
                .iter()
                .map(subprocessor_pb)
                .collect(),
            notice_days: self.broker.location().rules().notice_days,
        }))
    }
}

pub fn subprocessor_pb(s: &Subprocessor) -> pb::Subprocessor {
    pb::Subprocessor {
        name: s.name.to_string(),
        country: s.country.to_string(),
        purpose: s.purpose.clone(),
        announced_at_ms: s.announced_at.millis(),
        receipt: None,
    }
}

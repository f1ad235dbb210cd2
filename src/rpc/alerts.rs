//! `AlertService`: list, acknowledge and resolve the monitor's alerts.

use tonic::{Request, Response, Status};

use super::{Api, convert};
use crate::{
    domain::Alert,
    pb::{self, alert_service_server::AlertService},
    policy::Action,
};

/// The `AlertService` implementation.
#[derive(Clone)]
pub struct AlertApi(pub Api);

#[tonic::async_trait]
impl AlertService for AlertApi {
    async fn list_alerts(
        &self,
        req: Request<pb::ListAlertsRequest>,
    ) -> Result<Response<pb::ListAlertsResponse>, Status> {
        let api = &self.0;
        let caller = api.admit(&req, Action::ListAlerts).await?;
        let cmd = api
            .command(&caller, Action::ListAlerts, req.get_ref())
            .await?;
        let result = api.broker.list_alerts(&caller, &cmd);
        let alerts = api.finish(&caller, Action::ListAlerts, result).await?;
        Ok(Response::new(pb::ListAlertsResponse {
            alerts: alerts.iter().map(alert_to_pb).collect(),
        }))
    }

    async fn acknowledge_alert(
        &self,
        req: Request<pb::DecideAlertRequest>,
    ) -> Result<Response<pb::AlertResponse>, Status> {
        let api = &self.0;
        let caller = api.admit(&req, Action::AcknowledgeAlert).await?;
        let cmd = api
            .command(&caller, Action::AcknowledgeAlert, req.get_ref())
            .await?;
        let result = api.broker.acknowledge_alert(&caller, cmd).await;
        let (a, receipt) = api
            .finish(&caller, Action::AcknowledgeAlert, result)
            .await?;
        Ok(Response::new(pb::AlertResponse {
            alert: Some(alert_to_pb(&a)),
            receipt: convert::receipt_to_pb(Some(receipt)),
        }))
    }

    async fn resolve_alert(
        &self,
        req: Request<pb::DecideAlertRequest>,
    ) -> Result<Response<pb::AlertResponse>, Status> {
        let api = &self.0;
        let caller = api.admit(&req, Action::ResolveAlert).await?;
        let cmd = api
            .command(&caller, Action::ResolveAlert, req.get_ref())
            .await?;
        let result = api.broker.resolve_alert(&caller, cmd).await;
        let (a, receipt) = api.finish(&caller, Action::ResolveAlert, result).await?;
        Ok(Response::new(pb::AlertResponse {
            alert: Some(alert_to_pb(&a)),
            receipt: convert::receipt_to_pb(Some(receipt)),
        }))
    }
}

fn alert_to_pb(a: &Alert) -> pb::Alert {
    pb::Alert {
        id: a.id.to_string(),
        rule: a.rule.as_str().to_owned(),
        severity: a.severity.as_str().to_owned(),
        subject: a.subject.clone(),
        tenant: a.tenant.clone(),
        summary: a.summary.clone(),
        trigger_seqs: a.seqs.clone(),
        state: a.state.as_str().to_owned(),
        raised_at_ms: a.raised_at.millis(),
        acknowledged_by: a.acknowledged_by.clone(),
        acknowledged_at_ms: a.acknowledged_at.map_or(0, |t| t.millis()),
        acknowledge_note: a.acknowledge_note.clone(),
        resolved_by: a.resolved_by.clone(),
        resolved_at_ms: a.resolved_at.map_or(0, |t| t.millis()),
        resolve_note: a.resolve_note.clone(),
    }
}

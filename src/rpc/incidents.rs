//! `IncidentService`: the breach register's gRPC face. Requests are parsed
//! into the domain's types ([`crate::domain::incident`]) here; a request
//! that does not parse is refused (and logged) with INVALID_ARGUMENT naming
//! the field.

use tonic::{Request, Response, Status};

use super::{Api, convert};
use crate::{
    audit::state::incidents::Incident,
    domain::{IncidentId, IncidentReport, IncidentUpdate, Name, Notification, incident::RawReport},
    pb::{self, incident_service_server::IncidentService},
    policy::{Action, Caller},
    service::{BrokerError, incident_documents::DocFormat},
};

/// The `IncidentService` implementation.
#[derive(Clone)]
pub struct IncidentApi(pub Api);

impl Api {
    /// A parse result as a broker result; a failure is a refusal (logged).
    pub(super) async fn parsed<T>(
        &self,
        caller: &Caller,
        action: Action,
        parsed: Result<T, String>,
    ) -> Result<T, Status> {
        self.finish(caller, action, parsed.map_err(BrokerError::InvalidArgument))
            .await
    }
}

#[tonic::async_trait]
impl IncidentService for IncidentApi {
    async fn record_incident(
        &self,
        req: Request<pb::RecordIncidentRequest>,
    ) -> Result<Response<pb::IncidentResponse>, Status> {
        let api = &self.0;
        let action = Action::RecordIncident;
        let caller = api.admit(&req, action).await?;
        let r = req.get_ref();
        let report = IncidentReport::parse(&RawReport {
            nature: &r.nature,
            subject_categories: &r.data_subject_categories,
            data_categories: &r.personal_data_categories,
            approx_subjects: r.approx_data_subjects,
            approx_records: r.approx_records,
            contact_name: &r.contact_name,
            contact_email: &r.contact_email,
            consequences: &r.likely_consequences,
            measures: &r.measures,
            became_known_at_ms: r.became_known_at_ms,
            tenants: &r.tenants,
            evidence: &r.evidence_seqs,
        });
        let report = api.parsed(&caller, action, report).await?;
        let result = api.broker.record_incident(&caller, report).await;
        respond(api.finish(&caller, action, result).await?, api.broker.now())
    }

    async fn update_incident(
        &self,
        req: Request<pb::UpdateIncidentRequest>,
    ) -> Result<Response<pb::IncidentResponse>, Status> {
        let api = &self.0;
        let action = Action::UpdateIncident;
        let caller = api.admit(&req, action).await?;
        let r = req.get_ref();
        let parsed = IncidentId::parse(&r.id).and_then(|id| {
            IncidentUpdate::parse(
                &r.facts,
                &r.measures,
                &r.likely_consequences,
                &r.evidence_seqs,
            )
            .map(|u| (id, u))
        });
        let (id, update) = api.parsed(&caller, action, parsed).await?;
        let result = api.broker.update_incident(&caller, &id, update).await;
        respond(api.finish(&caller, action, result).await?, api.broker.now())
    }

    async fn record_notification(
        &self,
        req: Request<pb::RecordNotificationRequest>,
    ) -> Result<Response<pb::IncidentResponse>, Status> {
        let api = &self.0;
        let action = Action::RecordNotification;
        let caller = api.admit(&req, action).await?;
        let r = req.get_ref();
        let at = if r.notified_at_ms == 0 {
            api.broker.now().millis()
        } else {
            r.notified_at_ms
        };
        let by = if r.notified_by.trim().is_empty() {
            caller.principal().name.to_string()
        } else {
            r.notified_by.clone()
        };
        let parsed = IncidentId::parse(&r.id)
            .and_then(|id| Notification::parse(&r.tenant, at, &r.channel, &by).map(|n| (id, n)));
        let (id, n) = api.parsed(&caller, action, parsed).await?;
        let result = api.broker.record_notification(&caller, &id, n).await;
        respond(api.finish(&caller, action, result).await?, api.broker.now())
    }

    async fn get_incident(
        &self,
        req: Request<pb::GetIncidentRequest>,
    ) -> Result<Response<pb::Incident>, Status> {
        let api = &self.0;
        let action = Action::GetIncident;
        let caller = api.admit(&req, action).await?;
        let id = api
            .parsed(&caller, action, IncidentId::parse(&req.get_ref().id))
            .await?;
        let result = api.broker.get_incident(&caller, &id).await;
        let i = api.finish(&caller, action, result).await?;
        Ok(Response::new(incident_to_pb(&i, api.broker.now())))
    }

    async fn list_incidents(
        &self,
        req: Request<pb::ListIncidentsRequest>,
    ) -> Result<Response<pb::ListIncidentsResponse>, Status> {
        let api = &self.0;
        let action = Action::ListIncidents;
        let caller = api.admit(&req, action).await?;
        let tenant = optional_tenant(&req.get_ref().tenant);
        let tenant = api.parsed(&caller, action, tenant).await?;
        let result = api.broker.list_incidents(&caller, tenant.as_ref()).await;
        let list = api.finish(&caller, action, result).await?;
        let now = api.broker.now();
        Ok(Response::new(pb::ListIncidentsResponse {
            incidents: list.iter().map(|i| incident_to_pb(i, now)).collect(),
        }))
    }

    async fn notification_document(
        &self,
        req: Request<pb::NotificationDocumentRequest>,
    ) -> Result<Response<pb::Document>, Status> {
        let api = &self.0;
        let action = Action::NotificationDocument;
        let caller = api.admit(&req, action).await?;
        let r = req.get_ref();
        let parsed = IncidentId::parse(&r.id).and_then(|id| {
            let tenant = optional_tenant(&r.tenant)?;
            Ok((id, tenant, DocFormat::parse(&r.format)?))
        });
        let (id, tenant, format) = api.parsed(&caller, action, parsed).await?;
        let result = api
            .broker
            .notification_document(&caller, &id, tenant.as_ref(), format)
            .await;
        let content = api.finish(&caller, action, result).await?;
        Ok(Response::new(document(format, content)))
    }

    async fn documentation(
        &self,
        req: Request<pb::DocumentationRequest>,
    ) -> Result<Response<pb::Document>, Status> {
        let api = &self.0;
        let action = Action::Documentation;
        let caller = api.admit(&req, action).await?;
        let r = req.get_ref();
        let parsed = IncidentId::parse(&r.id).and_then(|id| Ok((id, DocFormat::parse(&r.format)?)));
        let (id, format) = api.parsed(&caller, action, parsed).await?;
        let result = api
            .broker
            .incident_documentation(&caller, &id, format)
            .await;
        let content = api.finish(&caller, action, result).await?;
        Ok(Response::new(document(format, content)))
    }
}

fn optional_tenant(s: &str) -> Result<Option<Name>, String> {
    if s.trim().is_empty() {
        return Ok(None);
    }
    Name::parse(s).map(Some).map_err(|e| format!("tenant: {e}"))
}

pub(super) fn document(format: DocFormat, content: String) -> pb::Document {
    pb::Document {
        format: format.as_str().to_owned(),
        media_type: format.media_type().to_owned(),
        content,
    }
}

fn respond(
    (i, receipt): (Incident, crate::ledger::Receipt),
    now: crate::clock::Timestamp,
) -> Result<Response<pb::IncidentResponse>, Status> {
    Ok(Response::new(pb::IncidentResponse {
        incident: Some(incident_to_pb(&i, now)),
        receipt: convert::receipt_to_pb(Some(receipt)),
    }))
}

fn incident_to_pb(i: &Incident, now: crate::clock::Timestamp) -> pb::Incident {
    let r = &i.report;
    pb::Incident {
        id: i.id.to_string(),
        nature: r.nature.clone(),
        data_subject_categories: r.subject_categories.clone(),
        personal_data_categories: r.data_categories.clone(),
        approx_data_subjects: r.approx_subjects,
        approx_records: r.approx_records,
        contact_name: r.contact.name.clone(),
        contact_email: r.contact.email.clone(),
        likely_consequences: r.consequences.clone(),
        measures: r.measures.clone(),
        became_known_at_ms: r.became_known_at.millis(),
        evidence_seqs: r.evidence.clone(),
        recorded_at_ms: i.recorded_at.millis(),
        recorded_by: i.recorded_by.clone(),
        recorded_seq: i.recorded_seq,
        updates: i
            .updates
            .iter()
            .map(|u| pb::IncidentUpdate {
                seq: u.seq,
                at_ms: u.at.millis(),
                by: u.by.clone(),
                facts: u.update.facts.clone(),
                measures: u.update.measures.clone(),
                likely_consequences: u.update.consequences.clone(),
                evidence_seqs: u.update.evidence.clone(),
            })
            .collect(),
        clocks: i
            .clocks
            .iter()
            .map(|(t, c)| {
                let status = c.status(now);
                pb::TenantClock {
                    tenant: t.to_string(),
                    due_at_ms: c.due_at.millis(),
                    status: status.as_str().to_owned(),
                    overdue: status == crate::audit::state::incidents::ClockStatus::Overdue,
                    notifications: c
                        .notifications
                        .iter()
                        .map(|n| pb::TenantNotification {
                            seq: n.seq,
                            notified_at_ms: n.notification.notified_at.millis(),
                            channel: n.notification.channel.clone(),
                            notified_by: n.notification.by.clone(),
                            recorded_by: n.recorded_by.clone(),
                            recorded_at_ms: n.recorded_at.millis(),
                        })
                        .collect(),
                    overdue_seq: c.overdue_logged.map_or(0, |(_, s)| s),
                }
            })
            .collect(),
    }
}

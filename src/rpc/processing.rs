//! `ProcessingService`: the register of processing's gRPC face. A request's
//! record is parsed into the domain's [`ProcessingRecord`] here; one that
//! does not parse is refused (and logged) with INVALID_ARGUMENT naming the
//! field.

use tonic::{Request, Response, Status};

use super::{Api, convert, incidents::document};
use crate::{
    domain::{
        Name, ProcessingRecord,
        processing::{RawContact, RawRecord, RawTransfer},
    },
    pb::{self, processing_service_server::ProcessingService},
    policy::Action,
    service::{
        incident_documents::DocFormat,
        processing::{DocScope, RecordedVersion, Setting},
    },
};

/// The `ProcessingService` implementation.
#[derive(Clone)]
pub struct ProcessingApi(pub Api);

#[tonic::async_trait]
impl ProcessingService for ProcessingApi {
    async fn set_processing_record(
        &self,
        req: Request<pb::SetProcessingRecordRequest>,
    ) -> Result<Response<pb::SetProcessingRecordResponse>, Status> {
        let api = &self.0;
        let action = Action::SetProcessingRecord;
        let caller = api.admit(&req, action).await?;
        let r = req.get_ref();
        let parsed = tenant(&r.tenant).and_then(|t| {
            let rec = r
                .record
                .as_ref()
                .ok_or_else(|| "record is required".to_owned())?;
            Ok((t, ProcessingRecord::parse(&record_from_pb(rec))?))
        });
        let (t, record) = api.parsed(&caller, action, parsed).await?;
        let result = api.broker.set_processing_record(&caller, &t, record).await;
        let (v, unchanged, receipt) = match api.finish(&caller, action, result).await? {
            Setting::Recorded(v, r) => (v, false, Some(r)),
            Setting::Unchanged(v) => (v, true, None),
        };
        Ok(Response::new(pb::SetProcessingRecordResponse {
            tenant: t.to_string(),
            version: Some(version_pb(&v)),
            unchanged,
            receipt: convert::receipt_to_pb(receipt),
        }))
    }

    async fn get_processing_record(
        &self,
        req: Request<pb::GetProcessingRecordRequest>,
    ) -> Result<Response<pb::ProcessingRecordResponse>, Status> {
        let api = &self.0;
        let action = Action::GetProcessingRecord;
        let caller = api.admit(&req, action).await?;
        let r = req.get_ref();
        let t = api.parsed(&caller, action, tenant(&r.tenant)).await?;
        let version = (r.version != 0).then_some(r.version);
        let result = api.broker.processing_record(&caller, &t, version).await;
        let v = api.finish(&caller, action, result).await?;
        Ok(Response::new(pb::ProcessingRecordResponse {
            tenant: t.to_string(),
            version: Some(version_pb(&v)),
            record: Some(record_to_pb(&v.record.to_raw())),
            canonical_json: v.json,
        }))
    }

    async fn list_processing_records(
        &self,
        req: Request<pb::ListProcessingRecordsRequest>,
    ) -> Result<Response<pb::ListProcessingRecordsResponse>, Status> {
        let api = &self.0;
        let action = Action::ListProcessingRecords;
        let caller = api.admit(&req, action).await?;
        let t = api
            .parsed(&caller, action, tenant(&req.get_ref().tenant))
            .await?;
        let result = api.broker.processing_history(&caller, &t).await;
        let versions = api.finish(&caller, action, result).await?;
        Ok(Response::new(pb::ListProcessingRecordsResponse {
            tenant: t.to_string(),
            versions: versions.iter().map(version_pb).collect(),
        }))
    }

    async fn processing_register_document(
        &self,
        req: Request<pb::ProcessingRegisterDocumentRequest>,
    ) -> Result<Response<pb::Document>, Status> {
        let api = &self.0;
        let action = Action::ProcessingRegisterDocument;
        let caller = api.admit(&req, action).await?;
        let r = req.get_ref();
        let parsed = DocFormat::parse(&r.format).and_then(|format| {
            let version = (r.version != 0).then_some(r.version);
            let scope = match (r.all, r.tenant.trim().is_empty(), caller.tenant()) {
                (true, false, _) => return Err("all: give a tenant or all, not both".to_owned()),
                (true, true, _) if version.is_some() => {
                    return Err("version: only with a tenant".to_owned());
                }
                (true, true, _) => DocScope::All,
                (false, false, _) => DocScope::Tenant {
                    tenant: tenant(&r.tenant)?,
                    version,
                },
                (false, true, Some(own)) => DocScope::Tenant {
                    tenant: own.clone(),
                    version,
                },
                (false, true, None) => {
                    return Err("tenant: name the tenant, or ask for all".to_owned());
                }
            };
            Ok((scope, format))
        });
        let (scope, format) = api.parsed(&caller, action, parsed).await?;
        let result = api.broker.processing_document(&caller, scope, format).await;
        let content = api.finish(&caller, action, result).await?;
        Ok(Response::new(document(format, content)))
    }
}

fn tenant(s: &str) -> Result<Name, String> {
    Name::parse(s.trim()).map_err(|e| format!("tenant: {e}"))
}

fn version_pb(v: &RecordedVersion) -> pb::ProcessingVersion {
    pb::ProcessingVersion {
        version: v.version,
        recorded_at_ms: v.recorded_at.millis(),
        recorded_by: v.recorded_by.clone(),
        sha256: v.sha256.clone(),
        seq: v.seq,
    }
}

/// A record message as unchecked fields (the CLI sends what it read).
pub fn record_from_pb(r: &pb::ProcessingRecord) -> RawRecord {
    let c = |c: &Option<pb::ProcessingContact>| {
        let c = c.clone().unwrap_or_default();
        RawContact {
            name: c.name,
            contact: c.contact,
        }
    };
    RawRecord {
        controller: c(&r.controller),
        representative: r.representative.as_ref().map(|_| c(&r.representative)),
        processor_contact: c(&r.processor_contact),
        categories: r.categories.clone(),
        purposes: r.purposes.clone(),
        data_subjects: r.data_subjects.clone(),
        personal_data: r.personal_data.clone(),
        recipients: r.recipients.clone(),
        transfers: r
            .transfers
            .iter()
            .map(|t| RawTransfer {
                country: t.country.clone(),
                safeguard: t.safeguard.clone(),
            })
            .collect(),
        retention: r.retention.clone(),
        security_measures: r.security_measures.clone(),
    }
}

/// Unchecked fields as a record message.
pub fn record_to_pb(r: &RawRecord) -> pb::ProcessingRecord {
    let c = |c: &RawContact| pb::ProcessingContact {
        name: c.name.clone(),
        contact: c.contact.clone(),
    };
    pb::ProcessingRecord {
        controller: Some(c(&r.controller)),
        representative: r.representative.as_ref().map(c),
        processor_contact: Some(c(&r.processor_contact)),
        categories: r.categories.clone(),
        purposes: r.purposes.clone(),
        data_subjects: r.data_subjects.clone(),
        personal_data: r.personal_data.clone(),
        recipients: r.recipients.clone(),
        transfers: r
            .transfers
            .iter()
            .map(|t| pb::ProcessingTransfer {
                country: t.country.clone(),
                safeguard: t.safeguard.clone(),
            })
            .collect(),
        retention: r.retention.clone(),
        security_measures: r.security_measures.clone(),
    }
}

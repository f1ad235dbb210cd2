//! `AuditService`: streaming the log (optionally following it), verifying
//! the stored chain, and the Merkle tree's checkpoints and proofs. Every
//! read of entries is itself logged first; checkpoints and proofs, which
//! reveal only hashes, are not.

use std::pin::Pin;

use tokio::sync::mpsc;
use tokio_stream::{Stream, wrappers::ReceiverStream};
use tonic::{Request, Response, Status};

use super::{Api, convert};
use crate::{
    ledger::SignedCheckpoint,
    pb::{self, audit_service_server::AuditService},
    policy::Action,
    service::BrokerError,
};

/// The `AuditService` implementation.
#[derive(Clone)]
pub struct AuditApi(pub Api);

/// Entries read from the store per step.
const CHUNK: usize = 256;
/// Entries a stream buffers for its reader.
const STREAM_BUFFER: usize = 32;
/// How long a stream waits for a reader that stopped reading.
const SLOW_READER: std::time::Duration = std::time::Duration::from_secs(30);

#[tonic::async_trait]
impl AuditService for AuditApi {
    type StreamEntriesStream = Pin<Box<dyn Stream<Item = Result<pb::LogEntry, Status>> + Send>>;

    async fn stream_entries(
        &self,
        req: Request<pb::StreamEntriesRequest>,
    ) -> Result<Response<Self::StreamEntriesStream>, Status> {
        let api = &self.0;
        let caller = api.admit(&req, Action::StreamEntries).await?;
        let r = req.into_inner();
        let purpose = match pb::ReadPurpose::try_from(r.purpose) {
            Ok(pb::ReadPurpose::Unspecified) => Some("read"),
            Ok(pb::ReadPurpose::Export) => Some("export"),
            Ok(pb::ReadPurpose::Replay) => Some("replay"),
            Ok(pb::ReadPurpose::Tail) => Some("tail"),
            Err(_) => None,
        };
        let store = api.broker.ledger().clone();
        let end = store.head().next_seq;
        let from = if r.last > 0 {
            end.saturating_sub(r.last)
        } else {
            r.from_seq
        };
        let result = match purpose {
            None => Err(BrokerError::InvalidArgument(format!(
                "unknown read purpose value {}: use export, replay or tail, or leave it unset",
                r.purpose
            ))),
            // Following from beyond the end would wait for entries that
            // may never come; reading from there returns nothing.
            Some(_) if from > end => Err(BrokerError::OutOfRange(format!(
                "from_seq {from} is beyond the log's end: it has {end} entries, so start at {end} or below"
            ))),
            // A slot first: a stream refused for want of one is not a read.
            Some(purpose) => match api.broker.stream_slot(&caller) {
                Ok(slot) => api
                    .broker
                    .log_audit_read(&caller, from, r.follow, purpose)
                    .await
                    .map(|()| slot),
                Err(e) => Err(e),
            },
        };
        let slot = api.finish(&caller, Action::StreamEntries, result).await?;

        let mut head = store.subscribe();
        let mut stopping = api.stopping.clone();
        let broker = api.broker.clone();
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        tokio::spawn(async move {
            let _slot = slot;
            let mut next = from;
            loop {
                let end = *head.borrow_and_update();
                while next < end {
                    // Offboarded or no longer allowed: the stream ends here,
                    // before anything more is sent.
                    if let Err(e) = broker.readmit(&caller, Action::StreamEntries).await {
                        let _ = tokio::time::timeout(SLOW_READER, tx.send(Err(e.into()))).await;
                        return;
                    }
                    let chunk: Vec<_> = store
                        .entries_from(next)
                        .take(CHUNK.min((end - next) as usize))
                        .collect();
                    if chunk.is_empty() {
                        return;
                    }
                    for item in chunk {
                        let msg = item
                            .map(|e| {
                                next = e.entry.seq + 1;
                                convert::entry_to_pb(&e)
                            })
                            .map_err(Status::from);
                        let failed = msg.is_err();
                        // A reader that stops reading is dropped, not
                        // buffered for.
                        match tokio::time::timeout(SLOW_READER, tx.send(msg)).await {
                            Ok(Ok(())) if !failed => {}
                            _ => return,
                        }
                    }
                }
                if !r.follow {
                    return;
                }
                tokio::select! {
                    changed = head.changed() => if changed.is_err() { return },
                    () = tx.closed() => return,
                    _ = stopping.wait_for(|stop| *stop) => return,
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    type BackupStream = Pin<Box<dyn Stream<Item = Result<pb::BackupChunk, Status>> + Send>>;

    async fn backup(
        &self,
        req: Request<pb::BackupRequest>,
    ) -> Result<Response<Self::BackupStream>, Status> {
        let api = &self.0;
        let caller = api.admit(&req, Action::Backup).await?;
        let result = api.broker.backup(&caller).await;
        let snapshot = api.finish(&caller, Action::Backup, result).await?;
        let (tx, rx) = mpsc::channel(4);
        // Reading the store blocks: one blocking task encodes and sends.
        tokio::task::spawn_blocking(move || {
            for chunk in snapshot.chunks() {
                let msg = chunk
                    .map(|data| pb::BackupChunk { data })
                    .map_err(Status::from);
                let failed = msg.is_err();
                if tx.blocking_send(msg).is_err() || failed {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn verify_chain(
        &self,
        req: Request<pb::VerifyChainRequest>,
    ) -> Result<Response<pb::VerifyChainResponse>, Status> {
        let api = &self.0;
        let caller = api.admit(&req, Action::VerifyChain).await?;
        let result = api.broker.verify_chain(&caller).await;
        let report = api.finish(&caller, Action::VerifyChain, result).await?;
        Ok(Response::new(pb::VerifyChainResponse {
            ok: report.problem.is_none(),
            entries_checked: report.checked,
            head_hash: report.head.to_vec(),
            first_bad_seq: report.problem.as_ref().map(|p| p.seq).unwrap_or(0),
            problem: report.problem.map(|p| p.to_string()).unwrap_or_default(),
        }))
    }

    async fn get_checkpoint(
        &self,
        req: Request<pb::GetCheckpointRequest>,
    ) -> Result<Response<pb::SignedCheckpoint>, Status> {
        let api = &self.0;
        let caller = api.admit(&req, Action::GetCheckpoint).await?;
        let result = api
            .broker
            .checkpoint(req.get_ref().tree_size)
            .and_then(|cp| {
                let restore = api.broker.restore_seq(cp.size)?;
                Ok((cp, restore))
            });
        let (cp, restore_seq) = api.finish(&caller, Action::GetCheckpoint, result).await?;
        let mut pb_cp = checkpoint_to_pb(&cp);
        pb_cp.restore_seq = restore_seq;
        Ok(Response::new(pb_cp))
    }

    async fn get_entries(
        &self,
        req: Request<pb::GetEntriesRequest>,
    ) -> Result<Response<pb::GetEntriesResponse>, Status> {
        let api = &self.0;
        let caller = api.admit(&req, Action::GetEntries).await?;
        let r = req.get_ref();
        let result = api.broker.entries(&caller, r.start, r.end).await;
        let entries = api.finish(&caller, Action::GetEntries, result).await?;
        Ok(Response::new(pb::GetEntriesResponse {
            entries: entries.iter().map(convert::entry_to_pb).collect(),
        }))
    }

    async fn get_inclusion_proof(
        &self,
        req: Request<pb::GetInclusionProofRequest>,
    ) -> Result<Response<pb::InclusionProof>, Status> {
        let api = &self.0;
        let caller = api.admit(&req, Action::GetInclusionProof).await?;
        let r = req.get_ref();
        let result = api.broker.inclusion_proof(&caller, r.seq, r.tree_size);
        let p = api
            .finish(&caller, Action::GetInclusionProof, result)
            .await?;
        Ok(Response::new(pb::InclusionProof {
            seq: p.seq,
            tree_size: p.size,
            leaf_hash: p.leaf_hash.to_vec(),
            hashes: p.hashes.iter().map(|h| h.to_vec()).collect(),
            checkpoint: p.checkpoint.map(|c| c.note.to_string()).unwrap_or_default(),
        }))
    }

    async fn get_consistency_proof(
        &self,
        req: Request<pb::GetConsistencyProofRequest>,
    ) -> Result<Response<pb::ConsistencyProof>, Status> {
        let api = &self.0;
        let caller = api.admit(&req, Action::GetConsistencyProof).await?;
        let r = req.get_ref();
        let result = api.broker.consistency_proof(r.old_size, r.new_size);
        let p = api
            .finish(&caller, Action::GetConsistencyProof, result)
            .await?;
        Ok(Response::new(pb::ConsistencyProof {
            old_size: p.old,
            new_size: p.new,
            hashes: p.hashes.iter().map(|h| h.to_vec()).collect(),
            checkpoint: p.checkpoint.map(|c| c.note.to_string()).unwrap_or_default(),
        }))
    }

    async fn record_report(
        &self,
        req: Request<pb::RecordReportRequest>,
    ) -> Result<Response<pb::RecordReportResponse>, Status> {
        let api = &self.0;
        let caller = api.admit(&req, Action::RecordReport).await?;
        let cmd = api
            .command(&caller, Action::RecordReport, req.get_ref())
            .await?;
        let result = api.broker.record_report(&caller, cmd).await;
        let (tenant, receipt) = api.finish(&caller, Action::RecordReport, result).await?;
        Ok(Response::new(pb::RecordReportResponse {
            tenant: tenant.to_string(),
            receipt: convert::receipt_to_pb(Some(receipt)),
        }))
    }

    async fn get_tenant_entries(
        &self,
        req: Request<pb::GetTenantEntriesRequest>,
    ) -> Result<Response<pb::GetTenantEntriesResponse>, Status> {
        let api = &self.0;
        let caller = api.admit(&req, Action::GetTenantEntries).await?;
        let cmd = api
            .command(&caller, Action::GetTenantEntries, req.get_ref())
            .await?;
        let result = api.broker.tenant_entries(&caller, cmd).await;
        let page = api
            .finish(&caller, Action::GetTenantEntries, result)
            .await?;
        Ok(Response::new(pb::GetTenantEntriesResponse {
            checkpoint: page.checkpoint.note.to_string(),
            tree_size: page.checkpoint.size,
            entries: page
                .entries
                .iter()
                .map(|(e, proof)| pb::ProvenEntry {
                    entry: Some(convert::entry_to_pb(e)),
                    inclusion: proof.iter().map(|h| h.to_vec()).collect(),
                })
                .collect(),
            next_seq: page.next_seq,
        }))
    }
}

fn checkpoint_to_pb(cp: &SignedCheckpoint) -> pb::SignedCheckpoint {
    pb::SignedCheckpoint {
        note: cp.note.to_string(),
        tree_size: cp.size,
        root_hash: cp.root.to_vec(),
        restore_seq: None,
    }
}

//! `GateService`: what a tenant's gateway needs to decide offline: the
//! published verification keys and its signed revocation list, polled or
//! streamed (docs/integration.md). These reads reveal no customer data and
//! are not logged (a feed is polled every few seconds).

use std::{pin::Pin, sync::Arc};

use tokio::sync::{broadcast, mpsc};
use tokio_stream::{Stream, wrappers::ReceiverStream};
use tonic::{Request, Response, Status};

use super::Api;
use crate::{
    gate::MAX_WATCHERS_PER_TENANT,
    pb::{self, gate_service_server::GateService},
    policy::{Action, Caller},
    service::{Broker, BrokerError},
};

/// The `GateService` implementation.
#[derive(Clone)]
pub struct GateApi(pub Api);

#[tonic::async_trait]
impl GateService for GateApi {
    type WatchRevocationsStream =
        Pin<Box<dyn Stream<Item = Result<pb::RevocationList, Status>> + Send>>;

    async fn get_verification_keys(
        &self,
        req: Request<pb::GetVerificationKeysRequest>,
    ) -> Result<Response<pb::VerificationKeys>, Status> {
        let api = &self.0;
        api.admit(&req, Action::GetVerificationKeys).await?;
        let keys = api.broker.gate().keys(api.broker.now());
        let ms = |t: Option<crate::clock::Timestamp>| t.map(|t| t.millis()).unwrap_or(0);
        Ok(Response::new(pb::VerificationKeys {
            token_keys: keys
                .token_keys
                .iter()
                .map(|k| pb::TokenKey {
                    key_id: k.id.clone(),
                    public_key: k.public_key.to_vec(),
                    retired_at_ms: ms(k.retired_at),
                    verify_until_ms: ms(k.verify_until),
                })
                .collect(),
            grant_cas: keys
                .grant_cas
                .iter()
                .map(|c| pb::GrantCa {
                    key_id: c.id.clone(),
                    certificate_pem: daypass_tenant::pem::encode("CERTIFICATE", &c.certificate_der),
                    retired_at_ms: ms(c.retired_at),
                    verify_until_ms: ms(c.verify_until),
                })
                .collect(),
            trust_domain: keys.trust_domain,
        }))
    }

    async fn get_revocations(
        &self,
        req: Request<pb::GetRevocationsRequest>,
    ) -> Result<Response<pb::RevocationList>, Status> {
        let api = &self.0;
        let caller = api.admit(&req, Action::GetRevocations).await?;
        let tenant = tenant_of(&caller)?;
        Ok(Response::new(revocation_list(&api.broker, &tenant)))
    }

    async fn watch_revocations(
        &self,
        req: Request<pb::WatchRevocationsRequest>,
    ) -> Result<Response<Self::WatchRevocationsStream>, Status> {
        let api = &self.0;
        let caller = api.admit(&req, Action::WatchRevocations).await?;
        let tenant = tenant_of(&caller)?;
        let broker = api.broker.clone();
        let Some(slot) = broker.gate().watch_slot(&tenant) else {
            return Err(BrokerError::Exhausted(format!(
                "tenant {tenant} already has {MAX_WATCHERS_PER_TENANT} revocation streams open; \
                 one per gateway is enough"
            ))
            .into());
        };
        let mut stopping = api.stopping.clone();
        let mut changed = broker.gate().subscribe();
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            let _slot = slot;
            let heartbeat = i64::try_from(broker.gate().heartbeat().as_millis()).unwrap_or(10_000);
            let clock = broker.clock().clone();
            loop {
                // A caller that may no longer follow the feed is told so.
                if let Err(e) = broker.readmit(&caller, Action::WatchRevocations).await {
                    let _ = tokio::time::timeout(
                        std::time::Duration::from_secs(30),
                        tx.send(Err(e.into())),
                    )
                    .await;
                    return;
                }
                let list = revocation_list(&broker, &tenant);
                let next = crate::clock::Timestamp(list.issued_at_ms.saturating_add(heartbeat));
                // A follower that stops reading must not hold a shutdown.
                tokio::select! {
                    sent = tx.send(Ok(list)) => if sent.is_err() { return },
                    _ = stopping.wait_for(|stop| *stop) => return,
                }
                // Until this tenant's list changes (another tenant's change
                // wakes nobody here) or the heartbeat is due.
                loop {
                    tokio::select! {
                        got = changed.recv() => match got {
                            Ok(t) if *t == *tenant => break,
                            Ok(_) => continue,
                            // Missed some: one of them may be ours.
                            Err(broadcast::error::RecvError::Lagged(_)) => break,
                            Err(broadcast::error::RecvError::Closed) => return,
                        },
                        () = clock.sleep_until(next) => {
                            if clock.now() >= next {
                                break;
                            }
                        }
                        () = tx.closed() => return,
                        _ = stopping.wait_for(|stop| *stop) => return,
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

fn tenant_of(caller: &Caller) -> Result<String, Status> {
    caller.tenant().map(|t| t.to_string()).ok_or_else(|| {
        BrokerError::PermissionDenied("revocation lists are for tenants".into()).into()
    })
}

/// The tenant's list now, signed; its sequence number is the log's size.
fn revocation_list(broker: &Arc<Broker>, tenant: &str) -> pb::RevocationList {
    let (token, claims) = broker
        .gate()
        .revocations(tenant, || (broker.ledger().durable_size(), broker.now()));
    pb::RevocationList {
        token,
        seq: claims.seq,
        issued_at_ms: claims.iat.millis(),
        revoked_grant_ids: claims.revoked.into_iter().map(|r| r.jti).collect(),
    }
}

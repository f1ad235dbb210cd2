//! NotifyService (proto/daypass/v1/notify.proto): the webhooks' dead
//! letters, listed and retried through the running [`Notifier`]. Admission
//! is the policy's (admins and root holders); the delivery itself is
//! `crate::notify`'s.

use tonic::{Request, Response, Status};

use super::Api;
use crate::{
    notify::NotifyError,
    pb::{self, notify_service_server::NotifyService},
    policy::Action,
    service::BrokerError,
};

/// The NotifyService face of [`Api`].
#[derive(Clone)]
pub struct NotifyApi(pub Api);

#[tonic::async_trait]
impl NotifyService for NotifyApi {
    async fn list_dead_letters(
        &self,
        req: Request<pb::ListDeadLettersRequest>,
    ) -> Result<Response<pb::ListDeadLettersResponse>, Status> {
        let api = &self.0;
        let caller = api.admit(&req, Action::ListDeadLetters).await?;
        let hook = req.get_ref().hook.as_str();
        let result = api
            .notifier
            .dead_letters((!hook.is_empty()).then_some(hook))
            .await
            .map_err(broker_error);
        let dead = api.finish(&caller, Action::ListDeadLetters, result).await?;
        Ok(Response::new(pb::ListDeadLettersResponse {
            dead_letters: dead
                .into_iter()
                .map(|(hook, d)| pb::DeadLetter {
                    hook,
                    seq: d.seq,
                    kind: d.kind,
                    attempts: d.attempts,
                    last_error: d.last_error,
                    failed_at: d.failed_at.to_rfc3339(),
                })
                .collect(),
        }))
    }

    async fn retry_dead_letter(
        &self,
        req: Request<pb::RetryDeadLetterRequest>,
    ) -> Result<Response<pb::RetryDeadLetterResponse>, Status> {
        let api = &self.0;
        let caller = api.admit(&req, Action::RetryDeadLetter).await?;
        let r = req.get_ref();
        let result = api
            .notifier
            .retry(&r.hook, r.seq)
            .await
            .map_err(broker_error);
        api.finish(&caller, Action::RetryDeadLetter, result).await?;
        Ok(Response::new(pb::RetryDeadLetterResponse {}))
    }
}

fn broker_error(e: NotifyError) -> BrokerError {
    match e {
        NotifyError::UnknownHook(_) | NotifyError::NoDeadLetter { .. } => {
            BrokerError::NotFound(e.to_string())
        }
        NotifyError::Store(e) => BrokerError::Store(e),
        other => BrokerError::FailedPrecondition(other.to_string()),
    }
}

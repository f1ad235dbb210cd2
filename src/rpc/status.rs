//! The one mapping from broker errors to gRPC status codes. Messages say
//! what was wrong and what to do; storage details are not leaked.

use tonic::{Code, Status};

use crate::{broker::BrokerError, store::StoreError};

impl From<BrokerError> for Status {
    fn from(e: BrokerError) -> Self {
        let code = match &e {
            BrokerError::Unauthenticated(_) => Code::Unauthenticated,
            BrokerError::Refused(_) | BrokerError::PermissionDenied(_) => Code::PermissionDenied,
            BrokerError::InvalidArgument(_) => Code::InvalidArgument,
            BrokerError::NotFound(_) => Code::NotFound,
            BrokerError::AlreadyExists(_) => Code::AlreadyExists,
            BrokerError::FailedPrecondition(_) => Code::FailedPrecondition,
            BrokerError::OutOfRange(_) => Code::OutOfRange,
            BrokerError::RateLimited { limited, .. } => {
                let retry = limited.retry_after_ms;
                let mut status = Status::resource_exhausted(e.to_string());
                // gRPC's retry pushback, and a plain hint for other clients.
                for key in ["grpc-retry-pushback-ms", "retry-after-ms"] {
                    if let Ok(v) = retry.to_string().parse() {
                        status.metadata_mut().insert(key, v);
                    }
                }
                return status;
            }
            BrokerError::Store(StoreError::Unavailable(detail)) => {
                tracing::error!(%detail, "store unavailable; failing closed");
                return Status::unavailable(
                    "the audit log cannot be written right now, so nothing was changed; retry later",
                );
            }
            BrokerError::Store(StoreError::Corrupt(detail)) => {
                tracing::error!(%detail, "store corrupt");
                return Status::internal("stored data is corrupt; an operator must investigate");
            }
        };
        Status::new(code, e.to_string())
    }
}

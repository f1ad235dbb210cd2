//! The one place a gRPC [`Status`] is made from an error: broker errors by
//! their [`ErrorCode`]. Messages say what was wrong and what to do; storage
//! details go to the server log, never to the caller.

use tonic::{Code, Status};

use crate::{
    ledger::LedgerError,
    service::{BrokerError, ErrorCode},
};

impl From<ErrorCode> for Code {
    fn from(c: ErrorCode) -> Code {
        match c {
            ErrorCode::Unauthenticated => Code::Unauthenticated,
            ErrorCode::PermissionDenied => Code::PermissionDenied,
            ErrorCode::InvalidArgument => Code::InvalidArgument,
            ErrorCode::NotFound => Code::NotFound,
            ErrorCode::AlreadyExists => Code::AlreadyExists,
            ErrorCode::FailedPrecondition => Code::FailedPrecondition,
            ErrorCode::OutOfRange => Code::OutOfRange,
            ErrorCode::ResourceExhausted => Code::ResourceExhausted,
            ErrorCode::Unavailable => Code::Unavailable,
            ErrorCode::Internal => Code::Internal,
        }
    }
}

impl From<BrokerError> for Status {
    fn from(e: BrokerError) -> Self {
        let code = Code::from(e.code());
        match &e {
            BrokerError::RateLimited { limited, .. } => {
                let retry = limited.retry_after_ms;
                let mut status = Status::new(code, e.to_string());
                // gRPC's retry pushback, and a plain hint for other clients.
                for key in ["grpc-retry-pushback-ms", "retry-after-ms"] {
                    if let Ok(v) = retry.to_string().parse() {
                        status.metadata_mut().insert(key, v);
                    }
                }
                status
            }
            BrokerError::Store(LedgerError::Unavailable(detail)) => {
                tracing::error!(%detail, "store unavailable; failing closed");
                Status::new(
                    code,
                    "the audit log cannot be written right now, so nothing was changed; retry later",
                )
            }
            BrokerError::Store(LedgerError::Corrupt(detail)) => {
                tracing::error!(%detail, "store corrupt");
                Status::new(code, "stored data is corrupt; an operator must investigate")
            }
            _ => Status::new(code, e.to_string()),
        }
    }
}

impl From<LedgerError> for Status {
    fn from(e: LedgerError) -> Self {
        Status::from(BrokerError::Store(e))
    }
}

/// The answer to a call whose handler panicked (the panic itself goes to
/// the server log only).
pub fn panic_status(message: &'static str) -> Status {
    Status::internal(message)
}

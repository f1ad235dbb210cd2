//! Reporting accesses: [`Reporter`] sends `GrantService.RecordAccess` for
//! every access a tenant admitted, so the broker's log holds what was done
//! under each grant.
//!
//! Reports are queued in a bounded buffer and sent by a background task,
//! several at a time. A report the broker could not take for now
//! (UNAVAILABLE, RESOURCE_EXHAUSTED, a broken connection, ...) is retried
//! with capped exponential backoff until it is acknowledged. One the broker
//! refuses (INVALID_ARGUMENT, FAILED_PRECONDITION, PERMISSION_DENIED, ...)
//! would be refused again: it is logged as an error and counted as failed.
//!
//! Nothing is dropped silently: when the buffer is full, [`Reporter::report`]
//! says so and the caller refuses the access; [`Reporter::flush`] waits
//! until everything queued before it was acknowledged (or failed). Each
//! report carries the time of the access and a random report id: the broker
//! logs a late report as what happened then (even if the grant has ended
//! since), and logs a report retried after a lost answer only once.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex},
    time::Duration,
};

use thiserror::Error;
use tokio::{
    sync::{mpsc, watch},
    task::JoinSet,
};
use tonic::{Code, Request, Status, transport::Channel};

use crate::{
    backoff::Backoff,
    clock::{SharedClock, SystemClock},
    pb::{self, grant_service_client::GrantServiceClient},
};

/// The longest `action` the broker records (characters).
pub const MAX_ACTION_CHARS: usize = 128;
/// The longest `resource` the broker records (characters).
pub const MAX_RESOURCE_CHARS: usize = 512;

/// How a reporter buffers and retries. Plain data.
#[derive(Debug, Clone)]
pub struct ReporterOptions {
    /// Reports waiting to be sent, at most; beyond, `report` fails.
    pub capacity: usize,
    /// Reports being sent (or retried) at once.
    pub max_in_flight: usize,
    /// First delay before a retry; it doubles per failure of that report.
    pub retry_min: Duration,
    /// Longest delay before a retry.
    pub retry_max: Duration,
    /// Deadline of each `RecordAccess` call.
    pub call_timeout: Duration,
}

impl Default for ReporterOptions {
    fn default() -> Self {
        ReporterOptions {
            capacity: 1024,
            max_in_flight: 16,
            retry_min: Duration::from_millis(100),
            retry_max: Duration::from_secs(5),
            call_timeout: Duration::from_secs(10),
        }
    }
}

/// What a reporter has done so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportStats {
    /// Reports accepted by [`Reporter::report`].
    pub queued: u64,
    /// Reports the broker recorded.
    pub acknowledged: u64,
    /// Reports the broker refused (not retried).
    pub failed: u64,
    /// Calls retried after a transient failure.
    pub retries: u64,
    /// Reports refused by [`Reporter::report`] because the buffer was full.
    pub rejected: u64,
    /// The most recent failure, for display.
    pub last_error: Option<String>,
}

/// Why a report was not taken. The caller should refuse the access.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum ReportError {
    #[error("the access cannot be recorded: {0} reports are waiting for the broker (buffer full)")]
    Full(usize),
    #[error(
        "the access cannot be recorded: its {field} is longer than the broker takes ({max} characters)"
    )]
    TooLong { field: &'static str, max: usize },
    #[error("the access cannot be recorded: the reporter has stopped")]
    Stopped,
}

/// Sends access reports in the background. Cheap to clone; the background
/// task ends once every clone is dropped and everything queued is done.
#[derive(Clone, Debug)]
pub struct Reporter {
    shared: Arc<Shared>,
}

struct Shared {
    /// The queue, and the next report's number: taken together under the
    /// lock, so reports enter the queue in number order.
    queue: Mutex<(mpsc::Sender<Job>, u64)>,
    progress: watch::Sender<Progress>,
    capacity: usize,
    /// Stamps each report with the time of the access.
    clock: SharedClock,
    rng: ring::rand::SystemRandom,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct Progress {
    stats: ReportStats,
    /// Every report numbered below this one is done.
    done_below: u64,
}

#[derive(Debug)]
struct Job {
    number: u64,
    request: pb::RecordAccessRequest,
}

impl Reporter {
    /// A reporter sending on `channel` (a mutual-TLS channel presenting the
    /// tenant's certificate), with default options.
    pub fn new(channel: Channel) -> Reporter {
        Reporter::with_options(channel, ReporterOptions::default())
    }

    pub fn with_options(channel: Channel, options: ReporterOptions) -> Reporter {
        Reporter::with_clock(channel, options, Arc::new(SystemClock))
    }

    /// A reporter stamping accesses with `clock` (tests inject one).
    pub fn with_clock(channel: Channel, options: ReporterOptions, clock: SharedClock) -> Reporter {
        let capacity = options.capacity.max(1);
        let (tx, rx) = mpsc::channel(capacity);
        let progress = watch::Sender::new(Progress::default());
        let worker = Worker {
            client: GrantServiceClient::new(channel),
            options,
            progress: progress.clone(),
        };
        tokio::spawn(worker.run(rx));
        Reporter {
            shared: Arc::new(Shared {
                queue: Mutex::new((tx, 0)),
                progress,
                capacity,
                clock,
                rng: ring::rand::SystemRandom::new(),
            }),
        }
    }

    /// Queues a report that the holder of `grant_id` did `action` to
    /// `resource`. Returns at once; an error means the report was not
    /// queued, and the access should be refused.
    pub fn report(&self, grant_id: &str, action: &str, resource: &str) -> Result<(), ReportError> {
        // The broker would refuse these for good: say so now, so the access
        // is refused instead of happening unrecorded.
        for (field, value, max) in [
            ("action", action, MAX_ACTION_CHARS),
            ("resource", resource, MAX_RESOURCE_CHARS),
        ] {
            if value.chars().count() > max {
                return Err(ReportError::TooLong { field, max });
            }
        }
        let accessed_at_ms = self.shared.clock.now().millis();
        let mut id = [0u8; 16];
        ring::rand::SecureRandom::fill(&self.shared.rng, &mut id)
            .map_err(|_| ReportError::Stopped)?;
        let mut queue = self.shared.queue.lock().unwrap_or_else(|e| e.into_inner());
        let (tx, next) = &mut *queue;
        let job = Job {
            number: *next,
            request: pb::RecordAccessRequest {
                grant_id: grant_id.to_owned(),
                action: action.to_owned(),
                resource: resource.to_owned(),
                accessed_at_ms,
                report_id: hex::encode(id),
            },
        };
        match tx.try_send(job) {
            Ok(()) => {
                *next += 1;
                self.shared.progress.send_modify(|p| p.stats.queued += 1);
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.shared.progress.send_modify(|p| p.stats.rejected += 1);
                tracing::error!(
                    grant_id,
                    action,
                    capacity = self.shared.capacity,
                    "access report buffer full: the access must be refused"
                );
                Err(ReportError::Full(self.shared.capacity))
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(ReportError::Stopped),
        }
    }

    /// Waits until every report queued before this call was acknowledged
    /// (or refused by the broker, see [`ReportStats::failed`]), then
    /// returns the counts.
    pub async fn flush(&self) -> ReportStats {
        let target = {
            let queue = self.shared.queue.lock().unwrap_or_else(|e| e.into_inner());
            queue.1
        };
        let mut rx = self.shared.progress.subscribe();
        // The sender lives in `self.shared`: waiting cannot fail.
        let _ = rx.wait_for(|p| p.done_below >= target).await;
        self.stats()
    }

    pub fn stats(&self) -> ReportStats {
        self.shared.progress.borrow().stats.clone()
    }

    /// Waits until `pred` holds for the counts (checked now and after every
    /// change), then returns them.
    pub async fn wait_for(&self, mut pred: impl FnMut(&ReportStats) -> bool) -> ReportStats {
        let mut rx = self.shared.progress.subscribe();
        let _ = rx.wait_for(|p| pred(&p.stats)).await;
        self.stats()
    }
}

/// The background task: takes reports in order, sends up to
/// `max_in_flight` at once, and keeps the `done_below` watermark.
struct Worker {
    client: GrantServiceClient<Channel>,
    options: ReporterOptions,
    progress: watch::Sender<Progress>,
}

enum Outcome {
    Acknowledged,
    Failed,
}

impl Worker {
    async fn run(self, mut rx: mpsc::Receiver<Job>) {
        let max_in_flight = self.options.max_in_flight.max(1);
        let mut in_flight: JoinSet<Outcome> = JoinSet::new();
        // Task → report number, and the numbers not yet done.
        let mut numbers = HashMap::new();
        let mut pending = BTreeSet::new();
        let mut received = 0u64;
        let mut open = true;
        loop {
            tokio::select! {
                job = rx.recv(), if open && in_flight.len() < max_in_flight => match job {
                    Some(job) => {
                        pending.insert(job.number);
                        received = job.number + 1;
                        let number = job.number;
                        let task = in_flight.spawn(deliver(
                            self.client.clone(),
                            job,
                            self.options.clone(),
                            self.progress.clone(),
                        ));
                        numbers.insert(task.id(), number);
                    }
                    None => open = false,
                },
                Some(done) = in_flight.join_next_with_id(), if !in_flight.is_empty() => {
                    let (id, outcome) = match done {
                        Ok((id, outcome)) => (id, outcome),
                        // `deliver` does not panic; if it did, that report
                        // is lost, and counted as failed.
                        Err(e) => {
                            tracing::error!(error = %e, "access report task failed");
                            (e.id(), Outcome::Failed)
                        }
                    };
                    if let Some(number) = numbers.remove(&id) {
                        pending.remove(&number);
                    }
                    let done_below = pending.first().copied().unwrap_or(received);
                    self.progress.send_modify(|p| {
                        match outcome {
                            Outcome::Acknowledged => p.stats.acknowledged += 1,
                            Outcome::Failed => p.stats.failed += 1,
                        }
                        p.done_below = done_below;
                    });
                }
                else => return,
            }
        }
    }
}

/// Sends one report until the broker acknowledges or refuses it.
async fn deliver(
    mut client: GrantServiceClient<Channel>,
    job: Job,
    options: ReporterOptions,
    progress: watch::Sender<Progress>,
) -> Outcome {
    let mut backoff = Backoff::new(options.retry_min, options.retry_max);
    loop {
        let mut req = Request::new(job.request.clone());
        req.set_timeout(options.call_timeout);
        match client.record_access(req).await {
            Ok(_) => return Outcome::Acknowledged,
            Err(status) if transient(&status) => {
                let delay = backoff.next_delay().max(pushback(&status));
                tracing::warn!(
                    grant_id = job.request.grant_id,
                    action = job.request.action,
                    code = ?status.code(),
                    error = status.message(),
                    retry_in = ?delay,
                    "access report not delivered yet; retrying"
                );
                progress.send_modify(|p| {
                    p.stats.retries += 1;
                    p.stats.last_error = Some(status.to_string());
                });
                tokio::time::sleep(delay).await;
            }
            Err(status) => {
                tracing::error!(
                    grant_id = job.request.grant_id,
                    action = job.request.action,
                    code = ?status.code(),
                    error = status.message(),
                    "access report refused by the broker; not retried"
                );
                progress.send_modify(|p| p.stats.last_error = Some(status.to_string()));
                return Outcome::Failed;
            }
        }
    }
}

/// May the same call succeed later? Codes that say "not now", and errors
/// raised on this side of the connection (they carry a source error; an
/// UNKNOWN from the broker itself does not).
fn transient(status: &Status) -> bool {
    match status.code() {
        Code::Unavailable
        | Code::ResourceExhausted
        | Code::Aborted
        | Code::DeadlineExceeded
        | Code::Cancelled => true,
        Code::Unknown => std::error::Error::source(status).is_some(),
        _ => false,
    }
}

/// The broker's `grpc-retry-pushback-ms` (sent with RESOURCE_EXHAUSTED).
fn pushback(status: &Status) -> Duration {
    status
        .metadata()
        .get("grpc-retry-pushback-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_millis)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_not_now_codes_are_retried() {
        assert!(transient(&Status::unavailable("down")));
        assert!(transient(&Status::resource_exhausted("slow down")));
        assert!(!transient(&Status::invalid_argument("action is empty")));
        assert!(!transient(&Status::failed_precondition("grant expired")));
        assert!(!transient(&Status::permission_denied("not a tenant")));
        assert!(!transient(&Status::unknown("from the server")));
    }

    #[test]
    fn pushback_is_read_from_metadata() {
        let mut status = Status::resource_exhausted("slow down");
        status
            .metadata_mut()
            .insert("grpc-retry-pushback-ms", "250".parse().expect("ascii"));
        assert_eq!(pushback(&status), Duration::from_millis(250));
        assert_eq!(pushback(&Status::unavailable("x")), Duration::ZERO);
    }
}

//! Following the broker: [`Feed`] keeps a [`Verifier`] supplied with the
//! tenant's signed revocation lists and the broker's current keys.
//!
//! The feed streams `GateService.WatchRevocations` and hands every list to
//! [`Verifier::apply_revocations`], which checks it. When the stream ends or
//! fails it reconnects with capped exponential backoff, and polls
//! `GetRevocations` while it waits. It fetches `GetVerificationKeys` at
//! start and then periodically (at once, too, when a list names a key it
//! does not know: the broker rotated).
//!
//! It owns no decision. It never removes a list or keys, so it cannot make
//! the verifier fail open: when the broker is out of reach the held list
//! ages, and the verifier refuses everything once it is older than its
//! staleness limit. What the feed did and its last error are visible
//! through the [`FeedHandle`] (and logged with `tracing`).

use std::{sync::Arc, time::Duration};

use thiserror::Error;
use tokio::{sync::watch, task::JoinHandle, time::Instant};
use tonic::{Request, Streaming, transport::Channel};

use crate::{
    backoff::Backoff,
    clock::Timestamp,
    keys::{GrantCa, KeyError, KeySet, TokenKey},
    pb::{self, gate_service_client::GateServiceClient},
    verifier::{FeedError, Refusal, Verifier},
};

/// Starts feeds. See the module documentation.
#[derive(Debug, Clone, Copy, Default)]
pub struct Feed;

/// How a feed paces itself. Plain data; [`Default`] suits a broker with the
/// default 10 s heartbeat and a verifier with the default 30 s limit.
#[derive(Debug, Clone)]
pub struct FeedOptions {
    /// First delay before reconnecting the stream; it doubles per failure.
    pub reconnect_min: Duration,
    /// Longest delay before reconnecting.
    pub reconnect_max: Duration,
    /// While waiting to reconnect, poll `GetRevocations` this often.
    pub poll_every: Duration,
    /// Fetch the keys again this often.
    pub keys_every: Duration,
    /// A stream silent for this long is presumed dead and reconnected (the
    /// broker sends a list at least every heartbeat).
    pub idle_timeout: Duration,
    /// Deadline of each unary call (keys, polls).
    pub call_timeout: Duration,
}

impl Default for FeedOptions {
    fn default() -> Self {
        FeedOptions {
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
            poll_every: Duration::from_secs(5),
            keys_every: Duration::from_secs(300),
            idle_timeout: Duration::from_secs(25),
            call_timeout: Duration::from_secs(10),
        }
    }
}

/// What a feed has done so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedStatus {
    /// Revocation lists the verifier took.
    pub lists_applied: u64,
    /// Lists the verifier refused (bad signature, wrong tenant, older).
    pub lists_refused: u64,
    /// Sequence number of the newest list taken.
    pub last_seq: Option<u64>,
    /// Key sets fetched and installed in the verifier.
    pub key_refreshes: u64,
    /// Whether a `WatchRevocations` stream is open now.
    pub streaming: bool,
    /// Streams opened (the first one and every reconnection).
    pub streams_opened: u64,
    /// Failed calls, ended streams and refused lists or keys.
    pub errors: u64,
    /// The most recent of those, for display.
    pub last_error: Option<String>,
}

/// A running feed. The feed stops when its handle is dropped.
#[must_use = "the feed stops when its handle is dropped"]
#[derive(Debug)]
pub struct FeedHandle {
    status: watch::Receiver<FeedStatus>,
    task: JoinHandle<()>,
}

/// Why the broker's keys were not taken.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum KeysError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("grant CA {id}: certificate_pem is not a PEM CERTIFICATE")]
    Pem { id: String },
    #[error("the broker published no token key")]
    NoTokenKey,
}

impl Feed {
    /// Follows the broker on `channel` (a mutual-TLS channel presenting the
    /// tenant's certificate) with default pacing, feeding `verifier`.
    pub fn follow(verifier: Arc<Verifier>, channel: Channel) -> FeedHandle {
        Feed::follow_with(verifier, channel, FeedOptions::default())
    }

    /// The same, paced by `options`.
    pub fn follow_with(
        verifier: Arc<Verifier>,
        channel: Channel,
        options: FeedOptions,
    ) -> FeedHandle {
        let (tx, status) = watch::channel(FeedStatus::default());
        let follower = Follower {
            gate: GateServiceClient::new(channel),
            verifier,
            options,
            status: tx,
        };
        FeedHandle {
            status,
            task: tokio::spawn(follower.run()),
        }
    }
}

impl FeedHandle {
    pub fn status(&self) -> FeedStatus {
        self.status.borrow().clone()
    }

    /// Waits until `pred` holds for the status (checked now and after every
    /// change); `None` if the feed stopped first.
    pub async fn wait_for(&self, mut pred: impl FnMut(&FeedStatus) -> bool) -> Option<FeedStatus> {
        let mut rx = self.status.clone();
        rx.wait_for(|s| pred(s)).await.ok().map(|s| s.clone())
    }

    /// Stops the feed (the verifier keeps what it has and goes stale).
    pub fn stop(self) {
        self.task.abort();
    }
}

impl Drop for FeedHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Converts the broker's `GetVerificationKeys` answer into a [`KeySet`],
/// checking every key id against its key.
pub fn keys_from_pb(keys: &pb::VerificationKeys) -> Result<KeySet, KeysError> {
    if keys.trust_domain.is_empty() {
        return Err(KeyError::NoTrustDomain.into());
    }
    if keys.token_keys.is_empty() {
        return Err(KeysError::NoTokenKey);
    }
    let token_keys = keys
        .token_keys
        .iter()
        .map(|k| {
            TokenKey::new(
                &k.key_id,
                &k.public_key,
                time(k.retired_at_ms),
                time(k.verify_until_ms),
            )
        })
        .collect::<Result<_, _>>()?;
    let grant_cas = keys
        .grant_cas
        .iter()
        .map(|c| {
            let der = crate::pem::decode(&c.certificate_pem, "CERTIFICATE").ok_or_else(|| {
                KeysError::Pem {
                    id: c.key_id.clone(),
                }
            })?;
            Ok(GrantCa::new(
                &c.key_id,
                der,
                time(c.retired_at_ms),
                time(c.verify_until_ms),
            )?)
        })
        .collect::<Result<_, KeysError>>()?;
    Ok(KeySet {
        trust_domain: keys.trust_domain.clone(),
        token_keys,
        grant_cas,
    })
}

/// The task behind a [`FeedHandle`].
struct Follower {
    gate: GateServiceClient<Channel>,
    verifier: Arc<Verifier>,
    options: FeedOptions,
    status: watch::Sender<FeedStatus>,
}

impl Follower {
    async fn run(mut self) {
        let mut backoff = Backoff::new(self.options.reconnect_min, self.options.reconnect_max);
        let mut keys_due = Instant::now();
        loop {
            if Instant::now() >= keys_due {
                keys_due = self.refresh_keys().await;
            }
            match self
                .gate
                .watch_revocations(pb::WatchRevocationsRequest {})
                .await
            {
                Ok(stream) => {
                    self.status.send_modify(|s| {
                        s.streaming = true;
                        s.streams_opened += 1;
                    });
                    tracing::debug!(tenant = self.verifier.tenant(), "revocation stream open");
                    self.stream(stream.into_inner(), &mut keys_due, &mut backoff)
                        .await;
                    self.status.send_modify(|s| s.streaming = false);
                }
                Err(status) => self.failed("WatchRevocations", &status.to_string()),
            }
            // Between attempts, poll: a broker (or proxy) that cannot stream
            // still keeps the verifier fresh.
            let reconnect_at = Instant::now() + backoff.next_delay();
            loop {
                self.poll().await;
                let next_poll = Instant::now() + self.options.poll_every;
                if next_poll >= reconnect_at {
                    tokio::time::sleep_until(reconnect_at).await;
                    break;
                }
                tokio::time::sleep_until(next_poll).await;
            }
        }
    }

    /// Applies the lists of one open stream until it ends, fails or falls
    /// silent, refreshing the keys when they are due.
    async fn stream(
        &self,
        mut stream: Streaming<pb::RevocationList>,
        keys_due: &mut Instant,
        backoff: &mut Backoff,
    ) {
        // One deadline, moved only by a list: waking for the keys must not
        // restart the idle clock (a half-open connection would never be
        // noticed while key fetches keep failing).
        let mut idle_deadline = Instant::now() + self.options.idle_timeout;
        loop {
            tokio::select! {
                next = stream.message() => {
                    match next {
                        Ok(Some(list)) => {
                            idle_deadline = Instant::now() + self.options.idle_timeout;
                            if self.apply(&list.token).await {
                                backoff.reset();
                            }
                        }
                        Ok(None) => {
                            self.failed("WatchRevocations", "the broker ended the stream");
                            return;
                        }
                        Err(status) => {
                            self.failed("WatchRevocations", &status.to_string());
                            return;
                        }
                    }
                }
                () = tokio::time::sleep_until(idle_deadline) => {
                    self.failed(
                        "WatchRevocations",
                        &format!("no list for {:?}; reconnecting", self.options.idle_timeout),
                    );
                    return;
                }
                () = tokio::time::sleep_until(*keys_due) => {
                    *keys_due = self.refresh_keys().await;
                }
            }
        }
    }

    /// One `GetRevocations`.
    async fn poll(&self) {
        let mut gate = self.gate.clone();
        match gate
            .get_revocations(self.request(pb::GetRevocationsRequest {}))
            .await
        {
            Ok(list) => {
                self.apply(&list.into_inner().token).await;
            }
            Err(status) => self.failed("GetRevocations", &status.to_string()),
        }
    }

    /// Hands a list to the verifier; on an unknown key, fetches the keys
    /// and tries once more. True if the list was taken.
    async fn apply(&self, token: &str) -> bool {
        let mut result = self.verifier.apply_revocations(token);
        if let Err(FeedError::Invalid(Refusal::UnknownKey(_))) = &result {
            self.refresh_keys().await;
            result = self.verifier.apply_revocations(token);
        }
        match result {
            Ok(seq) => {
                self.status.send_modify(|s| {
                    s.lists_applied += 1;
                    s.last_seq = Some(seq);
                });
                tracing::trace!(
                    tenant = self.verifier.tenant(),
                    seq,
                    "revocation list applied"
                );
                true
            }
            Err(e) => {
                self.status.send_modify(|s| s.lists_refused += 1);
                self.failed("revocation list", &e.to_string());
                false
            }
        }
    }

    /// Fetches and installs the keys; returns when they are next due (soon
    /// again after a failure, the old keys staying in place meanwhile).
    async fn refresh_keys(&self) -> Instant {
        let mut gate = self.gate.clone();
        let fetched = gate
            .get_verification_keys(self.request(pb::GetVerificationKeysRequest {}))
            .await
            .map_err(|status| status.to_string())
            .and_then(|keys| keys_from_pb(keys.get_ref()).map_err(|e| e.to_string()));
        match fetched {
            Ok(keys) => {
                self.verifier.set_keys(keys);
                self.status.send_modify(|s| s.key_refreshes += 1);
                Instant::now() + self.options.keys_every
            }
            Err(e) => {
                self.failed("GetVerificationKeys", &e);
                Instant::now() + self.options.poll_every.min(self.options.keys_every)
            }
        }
    }

    fn request<T>(&self, message: T) -> Request<T> {
        let mut req = Request::new(message);
        req.set_timeout(self.options.call_timeout);
        req
    }

    fn failed(&self, what: &str, error: &str) {
        tracing::warn!(
            tenant = self.verifier.tenant(),
            what,
            error,
            "revocation feed: {what} failed"
        );
        self.status.send_modify(|s| {
            s.errors += 1;
            s.last_error = Some(format!("{what}: {error}"));
        });
    }
}

/// 0 means "none" in the proto's times.
fn time(ms: i64) -> Option<Timestamp> {
    (ms != 0).then_some(Timestamp(ms))
}

#[cfg(test)]
mod tests {
    use ring::signature::{Ed25519KeyPair, KeyPair};

    use super::*;
    use crate::claims::key_id;

    fn token_key() -> pb::TokenKey {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("key");
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("key");
        let public = pair.public_key().as_ref().to_vec();
        pb::TokenKey {
            key_id: key_id(&public),
            public_key: public,
            retired_at_ms: 0,
            verify_until_ms: 0,
        }
    }

    #[test]
    fn keys_from_pb_checks_ids_and_maps_zero_to_none() {
        let mut retired = token_key();
        retired.retired_at_ms = 1_000;
        retired.verify_until_ms = 2_000;
        let pb_keys = pb::VerificationKeys {
            token_keys: vec![token_key(), retired],
            grant_cas: vec![],
            trust_domain: "example.org".into(),
        };
        let keys = keys_from_pb(&pb_keys).expect("valid keys");
        assert_eq!(keys.trust_domain, "example.org");
        assert_eq!(keys.token_keys[0].retired_at, None);
        assert_eq!(keys.token_keys[1].retired_at, Some(Timestamp(1_000)));
        assert_eq!(keys.token_keys[1].verify_until, Some(Timestamp(2_000)));

        let mut wrong_id = pb_keys.clone();
        wrong_id.token_keys[0].key_id = "0000000000000000".into();
        assert!(matches!(
            keys_from_pb(&wrong_id),
            Err(KeysError::Key(KeyError::KeyId { .. }))
        ));
        let mut no_domain = pb_keys.clone();
        no_domain.trust_domain.clear();
        assert_eq!(
            keys_from_pb(&no_domain),
            Err(KeysError::Key(KeyError::NoTrustDomain))
        );
        let mut bad_ca = pb_keys;
        bad_ca.grant_cas.push(pb::GrantCa {
            key_id: "00".into(),
            certificate_pem: "not pem".into(),
            retired_at_ms: 0,
            verify_until_ms: 0,
        });
        assert_eq!(
            keys_from_pb(&bad_ca),
            Err(KeysError::Pem { id: "00".into() })
        );
    }
}

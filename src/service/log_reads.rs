//! Reading the log: logged reads (streams, pages, a tenant's proven
//! entries), the server's chain check, checkpoints and proofs, and the
//! server's own lifecycle entries.

use super::{Broker, BrokerError, Receipted, Result};
use crate::{
    audit::{
        Hash, SealedEntry,
        check::{ChainReport, check_chain, check_semantics},
        merkle::{self, ProofError},
    },
    domain::{Actor, Draft, EventKind, Name, detail},
    ledger::{LedgerError, SignedCheckpoint},
    policy::{self, Caller},
    service::commands::{RecordReport, TenantEntries},
};

/// The cursor holding the newest `store.restored` entry's seq + 1.
pub const RESTORE_CURSOR: &str = "restore";
/// The cursor counting declared restores (the revocation lists' epoch).
pub const RESTORE_EPOCH_CURSOR: &str = "restore_epoch";

/// Most entries one `GetEntries` call returns.
pub const MAX_PAGE: u64 = 1000;
/// Most entries one `GetTenantEntries` call returns.
pub const MAX_TENANT_PAGE: u32 = 500;

/// An inclusion proof as served.
#[derive(Clone, Debug)]
pub struct Inclusion {
    pub seq: u64,
    pub size: u64,
    pub leaf_hash: Hash,
    pub hashes: Vec<Hash>,
    pub checkpoint: Option<SignedCheckpoint>,
}

/// A consistency proof as served.
#[derive(Clone, Debug)]
pub struct Consistency {
    pub old: u64,
    pub new: u64,
    pub hashes: Vec<Hash>,
    pub checkpoint: Option<SignedCheckpoint>,
}

/// One page of a tenant's proven entries.
#[derive(Clone, Debug)]
pub struct TenantPage {
    pub checkpoint: SignedCheckpoint,
    pub entries: Vec<(SealedEntry, Vec<Hash>)>,
    pub next_seq: u64,
}

fn proof_err(e: ProofError) -> BrokerError {
    BrokerError::OutOfRange(e.to_string())
}

impl Broker {
    /// Logs that `caller` reads the log (export, replay, tail...).
    pub async fn log_audit_read(
        &self,
        caller: &Caller,
        from: u64,
        follow: bool,
        purpose: &str,
    ) -> Result<()> {
        let draft = Draft::new(caller.actor(), "", EventKind::AuditRead)
            .with(detail::FROM_SEQ, from)
            .with(detail::FOLLOW, follow)
            .with(detail::PURPOSE, purpose);
        self.ledger.append(&*self.clock, vec![draft]).await?;
        Ok(())
    }

    /// Recomputes every stored entry's hash and link, then logs the result.
    pub async fn verify_chain(&self, caller: &Caller) -> Result<ChainReport> {
        // A full scan: one at a time, and off the async workers.
        let Ok(_running) = self.chain_check.try_acquire() else {
            return Err(BrokerError::Exhausted(
                "a chain check is already running; retry when it has finished".into(),
            ));
        };
        let ledger = self.ledger.clone();
        let rules = self.rules();
        let report = tokio::task::spawn_blocking(move || {
            let mut report = check_chain(&ledger)?;
            if report.problem.is_none() {
                report.problem = check_semantics(&ledger, rules)?;
            }

            Ok::<_, LedgerError>(report)
        })
        .await
        .map_err(|e| LedgerError::Unavailable(format!("verification task failed: {e}")))??;
        // Records the log did not vouch for at start-up (checked then, when
        // nothing else runs: a check now would race the writers).
        let mut report = report;
        if report.problem.is_none() {
            if let Some((why, seq)) = self.fail_closed.get() {
                report.problem = Some(crate::audit::Problem {
                    seq: *seq,
                    kind: crate::audit::verify::ProblemKind::Contradicted,
                    detail: why.clone(),
                });
            }
        }
        let mut draft = Draft::new(caller.actor(), "", EventKind::AuditVerified)
            .with(detail::ENTRIES, report.checked)
            .with(detail::OK, report.problem.is_none());
        if let Some(p) = &report.problem {
            draft = draft
                .with(detail::FIRST_BAD_SEQ, p.seq)
                .with(detail::PROBLEM, p.to_string());
        }
        self.ledger.append(&*self.clock, vec![draft]).await?;
        Ok(report)
    }

    /// The newest durable checkpoint (`size` 0) or the one signed at
    /// exactly `size` entries.
    pub fn checkpoint(&self, size: u64) -> Result<SignedCheckpoint> {
        let now = self.ledger.durable_size();
        if size > now {
            return Err(BrokerError::OutOfRange(format!(
                "tree size {size} is beyond the log, which has {now} entries"
            )));
        }
        let found = if size == 0 {
            self.ledger.latest_checkpoint()
        } else {
            self.ledger.checkpoint_at(size)?
        };
        found.ok_or_else(|| {
            BrokerError::NotFound(if size == 0 {
                "the log is empty: there is no checkpoint yet".into()
            } else {
                format!(
                    "no checkpoint was signed at tree size {size} (checkpoints exist where a \
                     write ended; the newest is at {})",
                    self.ledger.durable_size()
                )
            })
        })
    }

    /// Entries `[start, end)`, at most [`MAX_PAGE`]; the read is logged.
    pub async fn entries(&self, caller: &Caller, start: u64, end: u64) -> Result<Vec<SealedEntry>> {
        let durable = self.ledger.durable_size();
        let end = match end {
            0 => start.saturating_add(MAX_PAGE),
            e if e < start => {
                return Err(BrokerError::InvalidArgument(format!(
                    "end ({e}) is before start ({start})"
                )));
            }
            e if e - start > MAX_PAGE => {
                return Err(BrokerError::InvalidArgument(format!(
                    "at most {MAX_PAGE} entries per call; ask for [{start}, {})",
                    start + MAX_PAGE
                )));
            }
            e => e,
        }
        .min(durable);
        self.log_audit_read(caller, start, false, "entries").await?;
        let n = end.saturating_sub(start) as usize;
        Ok(self
            .ledger
            .entries_from(start)
            .take(n)
            .collect::<std::result::Result<_, _>>()?)
    }

    /// An inclusion proof for one entry the caller may read; any other
    /// entry is answered as NOT_FOUND, like one that does not exist.
    pub fn inclusion_proof(&self, caller: &Caller, seq: u64, size: u64) -> Result<Inclusion> {
        let (size, checkpoint) = self.tree_size(size)?;
        let entry = match self.ledger.entry(seq)? {
            Some(e) if seq < size && policy::may_read_entry(caller, &e.entry) => e,
            _ => {
                return Err(BrokerError::NotFound(format!(
                    "no entry {seq} that you may read in the tree of {size} entries"
                )));
            }
        };
        let hashes = self.ledger.inclusion_proof(seq, size)?.map_err(proof_err)?;
        Ok(Inclusion {
            seq,
            size,
            leaf_hash: merkle::leaf_hash(&entry.entry.encode()),
            hashes,
            checkpoint,
        })
    }

    /// A consistency proof between two tree sizes (only hashes).
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Consistency> {
        let (new, checkpoint) = self.tree_size(new)?;
        if old > new {
            return Err(BrokerError::InvalidArgument(format!(
                "old_size {old} is larger than new_size {new}"
            )));
        }
        let hashes = self
            .ledger
            .consistency_proof(old, new)?
            .map_err(proof_err)?;
        Ok(Consistency {
            old,
            new,
            hashes,
            checkpoint,
        })
    }

    /// One page of a tenant's entries, each with an inclusion proof against
    /// one checkpoint. The read is logged.
    /// Opens an access report: logs `report.generated` in the tenant's
    /// scope, its receipt the checkpoint the report proves against.
    pub async fn record_report(
        &self,
        caller: &Caller,
        cmd: RecordReport,
    ) -> Result<Receipted<Name>> {
        let tenant = self.log_tenant(caller, cmd.tenant)?;
        let draft = Draft::new(caller.actor(), tenant.as_str(), EventKind::ReportGenerated)
            .with(detail::PERIOD_FROM, cmd.from)
            .with(detail::PERIOD_TO, cmd.to);
        let committed = self.ledger.append(&*self.clock, vec![draft]).await?;
        Ok((tenant, committed.receipt))
    }

    /// The tenant whose log `caller` asks for (its own when it names
    /// none), if it may read it and it exists.
    fn log_tenant(&self, caller: &Caller, named: Option<Name>) -> Result<Name> {
        let tenant: Name = match (named, caller.tenant()) {
            (Some(t), _) => t,
            (None, Some(own)) => own.clone(),
            (None, None) => {
                return Err(BrokerError::InvalidArgument(
                    "name the tenant whose entries you want".into(),
                ));
            }
        };
        if !policy::may_read_tenant_log(caller, &tenant) {
            return Err(BrokerError::PermissionDenied(
                "a tenant can read only its own entries".into(),
            ));
        }
        if self.ledger.tenant(&tenant)?.is_none() {
            return Err(BrokerError::NotFound(format!(
                "tenant {tenant} is not registered"
            )));
        }
        Ok(tenant)
    }

    pub async fn tenant_entries(&self, caller: &Caller, cmd: TenantEntries) -> Result<TenantPage> {
        let tenant = self.log_tenant(caller, cmd.tenant)?;
        let limit = match cmd.limit {
            0 => MAX_TENANT_PAGE,
            l => l.min(MAX_TENANT_PAGE),
        } as usize;
        // The checkpoint is fixed before the read, so every proof is against it.
        let cp = self.checkpoint(cmd.tree_size)?;
        let draft = Draft::new(caller.actor(), tenant.as_str(), EventKind::AuditRead)
            .with(detail::FROM_SEQ, cmd.from)
            .with(detail::FOLLOW, false)
            .with(detail::PURPOSE, "tenant-entries")
            .with(detail::TREE_SIZE, cp.size);
        self.ledger.append(&*self.clock, vec![draft]).await?;
        let mut entries = Vec::new();
        let mut next_seq = 0;
        for seq in self.ledger.tenant_seqs(tenant.as_str(), cmd.from) {
            let seq = seq?;
            if seq >= cp.size {
                break;
            }
            if entries.len() == limit {
                next_seq = seq;
                break;
            }
            let entry = self.ledger.entry(seq)?.ok_or_else(|| {
                LedgerError::Corrupt(format!("entry {seq} is indexed but missing"))
            })?;
            let proof = self
                .ledger
                .inclusion_proof(seq, cp.size)?
                .map_err(proof_err)?;
            entries.push((entry, proof));
        }
        Ok(TenantPage {
            checkpoint: cp,
            entries,
            next_seq,
        })
    }

    /// Resolves a requested tree size (0: the newest durable checkpoint's).
    /// Returns the checkpoint too when it was chosen here.
    fn tree_size(&self, size: u64) -> Result<(u64, Option<SignedCheckpoint>)> {
        if size == 0 {
            let cp = self.checkpoint(0)?;
            return Ok((cp.size, Some(cp)));
        }
        let durable = self.ledger.durable_size();
        if size > durable {
            return Err(BrokerError::OutOfRange(format!(
                "tree size {size} is beyond the log's {durable} entries"
            )));
        }
        Ok((size, None))
    }

    /// Logs a server lifecycle event.
    /// Starts an online backup for `caller` (admins): logged first as
    /// `store.backed_up` with the size the copy will hold, so the log says
    /// who took a copy of everything.
    pub async fn backup(&self, caller: &Caller) -> Result<crate::ledger::backup::Snapshot> {
        let snapshot = self.ledger.backup(self.now()).await?;
        let draft = Draft::new(caller.actor(), "", EventKind::StoreBackedUp)
            .with(detail::ENTRIES, snapshot.header.size)
            .with(detail::SNAPSHOT_TAKEN_AT, &snapshot.header.taken_at);
        self.ledger.append(&*self.clock, vec![draft]).await?;
        Ok(snapshot)
    }

    /// The newest declared restore's entry, if the store was restored
    /// and that entry is in a tree of `size` entries.
    pub fn restore_seq(&self, size: u64) -> Result<Option<u64>> {
        Ok(self
            .ledger
            .cursor(RESTORE_CURSOR)?
            .and_then(|next| next.checked_sub(1))
            .filter(|seq| *seq < size))
    }

    /// Logs a declared restore (at start-up, before anything else is
    /// written): `store.restored` as the first entry after the restored
    /// log, naming what was lost (`lost`, the newest checkpoint this
    /// server had published, if any), with the restore count (`epoch`)
    /// and the previous restore's seq, so witnesses can walk them.
    pub async fn declare_restore(
        &self,
        declaration: &crate::ledger::backup::Declaration,
        lost: Option<&SignedCheckpoint>,
    ) -> Result<u64> {
        let seq = self.ledger.head().next_seq;
        if seq != declaration.restored_size {
            return Err(BrokerError::FailedPrecondition(format!(
                "the data directory holds {seq} entries but its restore declaration says {}:                  it was changed after `daypass restore`",
                declaration.restored_size
            )));
        }
        let (lost_size, lost_root) = match lost {
            Some(cp) if cp.size >= seq => (cp.size, hex::encode(cp.root)),
            _ => (seq, String::new()),
        };
        let ((), committed) = self
            .ledger
            .commit(&*self.clock, |view, batch, _| {
                let epoch = view.cursor(RESTORE_EPOCH_CURSOR)?.unwrap_or(0) + 1;
                let previous = view.cursor(RESTORE_CURSOR)?.and_then(|n| n.checked_sub(1));
                batch.put_cursor(RESTORE_EPOCH_CURSOR, epoch);
                batch.put_cursor(RESTORE_CURSOR, seq + 1);
                let mut d = Draft::new(Actor::System, "", EventKind::StoreRestored)
                    .with(detail::RESTORED_SIZE, seq)
                    .with(detail::LOST_SIZE, lost_size)
                    .with(detail::LOST_ROOT, &lost_root)
                    .with(detail::SNAPSHOT_TAKEN_AT, &declaration.snapshot_taken_at)
                    .with(detail::EPOCH, epoch);
                if let Some(p) = previous {
                    d = d.with(detail::PREVIOUS_RESTORE, p);
                }
                batch.log(d);
                Ok::<_, BrokerError>(())
            })
            .await?;
        match committed {
            Some(c) if c.receipt.seq == seq => Ok(seq),
            _ => Err(BrokerError::Store(LedgerError::Unavailable(
                "the restore entry was not written where declared".into(),
            ))),
        }
    }

    /// A system entry with the given details (key rotation, a declared
    /// restore: start-up events the server itself writes).
    pub async fn log_system(&self, kind: EventKind, details: &[(&str, String)]) -> Result<()> {
        let mut draft = Draft::new(Actor::System, "", kind);
        for (k, v) in details {
            draft = draft.with(k, v);
        }
        self.ledger.append(&*self.clock, vec![draft]).await?;
        Ok(())
    }

    pub async fn log_server(&self, kind: EventKind, what: &str) -> Result<()> {
        let draft = Draft::new(Actor::System, "", kind)
            .with(detail::VERSION, env!("CARGO_PKG_VERSION"))
            .with(detail::DETAIL, what);
        self.ledger.append(&*self.clock, vec![draft]).await?;
        Ok(())
    }
}

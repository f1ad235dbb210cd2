//! Unit tests of the ledger: group commit, recovery, the commit contract.

use std::{path::Path, sync::Arc};

use std::sync::atomic::Ordering;

use super::*;
use crate::{
    audit::note::{Checkpoint, LogKey},
    clock::{ManualClock, SystemClock},
    domain::{Actor, Draft, EventKind, Name, Role, StaffRecord, detail},
};

fn ledger(dir: &Path) -> Ledger {
    Ledger::open(dir, Arc::new(LogKey::generate("t.test/log").unwrap())).unwrap()
}

fn staff(name: &str) -> StaffRecord {
    StaffRecord {
        name: Name::parse(name).unwrap(),
        role: Role::Support,
        enrolled_at: Timestamp(1),
        offboarded_at: None,
        declaration: None,
    }
}

fn probe() -> Draft {
    Draft::new(Actor::System, "", EventKind::AuditRead)
}

/// Two commits in one group: the second sees the first's record before
/// anything is on disk; one driver write and one flush write both.
#[tokio::test]
async fn a_group_reads_its_own_pending_commits_and_is_written_once() {
    let dir = tempfile::tempdir().unwrap();
    let key = Arc::new(LogKey::generate("t.test/log").unwrap());
    let s = Ledger::open(dir.path(), key.clone()).unwrap();
    let clock = ManualClock::new(Timestamp(1_000));
    let alice = Name::parse("alice").unwrap();
    {
        let mut w = s.writer.lock().await;
        s.apply(&mut w, &clock, |_, b, _| {
            b.put_staff(staff("alice"));
            b.log(
                Draft::new(Actor::System, "", EventKind::StaffEnrolled).with(detail::NAME, "alice"),
            );
            Ok::<_, LedgerError>(())
        })
        .unwrap();
        let (seen, _, _) = s
            .apply(&mut w, &clock, |v, b, _| {
                b.log(probe());
                Ok::<_, LedgerError>((v.staff(&alice)?, v.all_staff()?.len()))
            })
            .unwrap();
        assert_eq!(seen.0.map(|r| r.name), Some(alice.clone()));
        assert_eq!(seen.1, 1);
        // Nothing written yet, and readers outside the lock see nothing.
        assert!(s.staff(&alice).unwrap().is_none());
        assert_eq!(s.head().next_seq, 0);
    }
    s.flush().await.unwrap();
    assert_eq!(s.group_stats(), (2, 1));
    assert!(s.staff(&alice).unwrap().is_some());
    assert_eq!(s.head().next_seq, 2);
    let cp = s.latest_checkpoint().unwrap();
    assert_eq!(cp.size, 2);
    let entries: Vec<_> = s.entries_from(0).collect::<Result<_, _>>().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[1].entry.prev_hash, entries[0].hash);
    assert_eq!(entries[1].entry.kind, "audit.read");
    // Reopened: the same head, tree and checkpoint (its signature
    // checked on the way in).
    drop(s);
    let s = Ledger::open(dir.path(), key).unwrap();
    assert_eq!(s.head().next_seq, 2);
    assert_eq!(s.latest_checkpoint().unwrap().root, cp.root);
    assert_eq!(s.checkpoint_at(2).unwrap().unwrap().note, cp.note);
}

/// A stored checkpoint that does not verify with the ledger's key is
/// refused at open, not served.
#[tokio::test]
async fn a_checkpoint_signed_by_another_key_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let s = ledger(dir.path());
    s.append(&SystemClock, vec![probe()]).await.unwrap();
    drop(s);
    let err = Ledger::open(
        dir.path(),
        Arc::new(LogKey::generate("t.test/log").unwrap()),
    )
    .err()
    .expect("another key's checkpoint is refused");
    assert!(matches!(err, LedgerError::Corrupt(_)), "{err}");
}

/// A failing flush fails its callers and every later write until a
/// flush succeeds; then the group that failed is durable after all and
/// the log goes on from it.
#[tokio::test]
async fn a_failed_flush_fails_closed_until_a_flush_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let s = ledger(dir.path());
    s.append(&SystemClock, vec![probe()]).await.unwrap();
    s.faults().fail_flushes(true);
    assert!(s.append(&SystemClock, vec![probe()]).await.is_err());
    assert!(s.append(&SystemClock, vec![probe()]).await.is_err());
    assert_eq!(s.durable_size(), 1);
    s.faults().fail_flushes(false);
    let c = s.append(&SystemClock, vec![probe()]).await.unwrap();
    // The first failed group reached the disk with the retried flush;
    // the second was refused before it was written.
    assert_eq!(c.receipt.seq, 2);
    assert_eq!(s.durable_size(), 3);
    let cp = Checkpoint::parse(c.receipt.checkpoint.split("\n\n").next().unwrap()).unwrap();
    assert_eq!(cp.size, 3);
}

/// A driver that, like sled, keeps a failure until it is recovered, and
/// can be told to report a head it does not hold.
struct Sticky {
    inner: crate::ledger::driver::sled::SledDriver,
    fail_next_flush: std::sync::atomic::AtomicBool,
    broken: std::sync::atomic::AtomicBool,
    recovered: std::sync::atomic::AtomicU32,
    false_head: parking_lot::Mutex<Option<StoredHead>>,
    /// Flushes wait while this is true (a hanging disk).
    hold_flushes: tokio::sync::watch::Sender<bool>,
}

impl Sticky {
    fn broken(&self) -> Result<(), LedgerError> {
        if self.broken.load(Ordering::Relaxed) {
            return Err(LedgerError::Unavailable("sticky".into()));
        }
        Ok(())
    }
}

use crate::{
    audit::merkle::NodeId,
    domain::{Grant, GrantId, TenantRecord},
    ledger::{
        batch::{ReportKey, ReportRef},
        driver::{Driver, FlushFuture, Rows},
    },
};

impl Driver for Sticky {
    fn stored_head(&self) -> Result<Option<StoredHead>, LedgerError> {
        match *self.false_head.lock() {
            Some(h) => Ok(Some(h)),
            None => self.inner.stored_head(),
        }
    }
    fn write(&self, g: &Group<'_>) -> Result<(), LedgerError> {
        self.broken()?;
        self.inner.write(g)
    }
    fn flush(&self) -> FlushFuture<'_> {
        Box::pin(async move {
            let _ = self.hold_flushes.subscribe().wait_for(|held| !held).await;
            if self.fail_next_flush.swap(false, Ordering::Relaxed) {
                self.broken.store(true, Ordering::Relaxed);
            }
            self.broken()?;
            self.inner.flush().await
        })
    }
    fn flush_blocking(&self) -> Result<(), LedgerError> {
        self.broken()?;
        self.inner.flush_blocking()
    }
    fn recover(&self) -> Result<(), LedgerError> {
        self.inner.recover()?;
        self.broken.store(false, Ordering::Relaxed);
        self.recovered.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
    fn staff(&self, n: &Name) -> Result<Option<StaffRecord>, LedgerError> {
        self.inner.staff(n)
    }
    fn all_staff(&self) -> Result<Vec<StaffRecord>, LedgerError> {
        self.inner.all_staff()
    }
    fn tenant(&self, n: &Name) -> Result<Option<TenantRecord>, LedgerError> {
        self.inner.tenant(n)
    }
    fn all_tenants(&self) -> Result<Vec<TenantRecord>, LedgerError> {
        self.inner.all_tenants()
    }
    fn grant(&self, id: &GrantId) -> Result<Option<Grant>, LedgerError> {
        self.inner.grant(id)
    }
    fn all_grants(&self) -> Result<Vec<Grant>, LedgerError> {
        self.inner.all_grants()
    }
    fn live_grants(&self) -> Result<Vec<Grant>, LedgerError> {
        self.inner.live_grants()
    }
    fn tenant_grant(&self, t: &Name, id: &GrantId) -> Result<Option<Grant>, LedgerError> {
        self.inner.tenant_grant(t, id)
    }
    fn latest_grant(&self, h: &Name, t: &Name) -> Result<Option<Grant>, LedgerError> {
        self.inner.latest_grant(h, t)
    }
    fn report(&self, k: &ReportKey) -> Result<Option<ReportRef>, LedgerError> {
        self.inner.report(k)
    }
    fn alert(
        &self,
        id: &crate::domain::AlertId,
    ) -> Result<Option<crate::domain::Alert>, LedgerError> {
        self.inner.alert(id)
    }
    fn all_alerts(&self) -> Result<Vec<crate::domain::Alert>, LedgerError> {
        self.inner.all_alerts()
    }
    fn cursor(&self, name: &str) -> Result<Option<u64>, LedgerError> {
        self.inner.cursor(name)
    }
    fn screen(&self, name: &Name) -> Result<Option<crate::domain::ScreenRecord>, LedgerError> {
        self.inner.screen(name)
    }
    fn all_screens(&self) -> Result<Vec<crate::domain::ScreenRecord>, LedgerError> {
        self.inner.all_screens()
    }
    fn entry(&self, seq: u64) -> Result<Option<SealedEntry>, LedgerError> {
        self.inner.entry(seq)
    }
    fn entries_from(&self, from: u64) -> Rows<SealedEntry> {
        self.inner.entries_from(from)
    }
    fn node(&self, id: NodeId) -> Result<Option<Hash>, LedgerError> {
        self.inner.node(id)
    }
    fn checkpoint(&self, size: u64) -> Result<Option<String>, LedgerError> {
        self.inner.checkpoint(size)
    }
    fn newest_checkpoint(&self) -> Result<Option<String>, LedgerError> {
        self.inner.newest_checkpoint()
    }
    fn tenant_seqs(&self, t: &str, from: u64) -> Rows<u64> {
        self.inner.tenant_seqs(t, from)
    }
    fn last_tenant_seq(&self, t: &str) -> Result<Option<u64>, LedgerError> {
        self.inner.last_tenant_seq(t)
    }
    fn notifier_state(&self, key: &str) -> Result<Option<Vec<u8>>, LedgerError> {
        self.inner.notifier_state(key)
    }
    fn put_notifier_state(&self, key: &str, value: &[u8]) -> Result<(), LedgerError> {
        self.inner.put_notifier_state(key, value)
    }
    fn backup_state(&self) -> Result<Vec<crate::ledger::driver::BackupRecord>, LedgerError> {
        self.inner.backup_state()
    }
    fn backup_log(&self, size: u64) -> Rows<crate::ledger::driver::BackupRecord> {
        self.inner.backup_log(size)
    }
}

fn sticky_ledger(dir: &Path) -> (Ledger, Arc<Sticky>) {
    let d = Arc::new(Sticky {
        inner: crate::ledger::driver::sled::SledDriver::open(dir, 8 << 20).unwrap(),
        fail_next_flush: Default::default(),
        broken: Default::default(),
        recovered: Default::default(),
        false_head: Default::default(),
        hold_flushes: tokio::sync::watch::Sender::new(false),
    });
    let key = Arc::new(LogKey::generate("t.test/log").unwrap());
    (Ledger::with_driver(d.clone(), key).unwrap(), d)
}

/// A driver error that sticks (as sled's does) is cleared by a reopen
/// before the next group; the group whose flush failed is found on
/// disk and kept, and the log goes on from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sticky_driver_error_is_recovered_by_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (s, d) = sticky_ledger(dir.path());
    s.append(&SystemClock, vec![probe()]).await.unwrap();
    d.fail_next_flush.store(true, Ordering::Relaxed);
    assert!(s.append(&SystemClock, vec![probe()]).await.is_err());
    let c = s.append(&SystemClock, vec![probe()]).await.unwrap();
    assert_eq!(d.recovered.load(Ordering::Relaxed), 1);
    assert_eq!(c.receipt.seq, 2, "the unflushed group reached the disk");
    assert_eq!(s.durable_size(), 3);
    let report = crate::audit::check::check_chain(&s).unwrap();
    assert_eq!(report.problem, None);
    // Injected faults (above the driver) do not reopen it.
    s.faults().fail_writes(true);
    assert!(s.append(&SystemClock, vec![probe()]).await.is_err());
    s.faults().fail_writes(false);
    s.append(&SystemClock, vec![probe()]).await.unwrap();
    assert_eq!(d.recovered.load(Ordering::Relaxed), 1);
}

/// Commits accepted but not yet settled are counted while a flush hangs
/// (what the monitor's log-stalled rule samples), and none once it ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_behind_a_hanging_flush_are_counted_as_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let (s, d) = sticky_ledger(dir.path());
    let s = Arc::new(s);
    s.append(&SystemClock, vec![probe()]).await.unwrap();
    assert_eq!(s.commits_waiting(), 0);
    d.hold_flushes.send_replace(true);
    let tasks: Vec<_> = (0..3)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.append(&SystemClock, vec![probe()]).await.map(drop) })
        })
        .collect();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while s.commits_waiting() < 3 {
        assert!(tokio::time::Instant::now() < deadline, "three commits wait");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(s.durable_size(), 1, "nothing more is durable meanwhile");
    d.hold_flushes.send_replace(false);
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(s.commits_waiting(), 0);
    assert_eq!(s.durable_size(), 4);
}

/// After a reopen that finds a head the ledger never wrote, every write
/// is refused for good: no guessing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reopen_that_finds_another_head_fails_closed() {
    let dir = tempfile::tempdir().unwrap();
    let (s, d) = sticky_ledger(dir.path());
    s.append(&SystemClock, vec![probe()]).await.unwrap();
    s.append(&SystemClock, vec![probe()]).await.unwrap();
    *d.false_head.lock() = Some(StoredHead {
        next_seq: 1,
        prev_hash: [7; 32],
        tree_size: 1,
    });
    d.fail_next_flush.store(true, Ordering::Relaxed);
    assert!(s.append(&SystemClock, vec![probe()]).await.is_err());
    // Callers are told it failed (UNAVAILABLE), with the reason.
    let err = s.append(&SystemClock, vec![probe()]).await.unwrap_err();
    assert!(err.to_string().contains("neither"), "{err}");
    *d.false_head.lock() = None;
    let err = s.append(&SystemClock, vec![probe()]).await.unwrap_err();
    assert!(
        err.to_string().contains("neither"),
        "refused for good: {err}"
    );
    assert_eq!(
        d.recovered.load(Ordering::Relaxed),
        1,
        "and not reopened again"
    );
    assert_eq!(s.durable_size(), 2);
}

/// Concurrent commits share group writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commits_share_group_writes() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(ledger(dir.path()));
    let mut tasks = Vec::new();
    for i in 0..64 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for j in 0..20 {
                let c = s
                    .append(&SystemClock, vec![probe().with("n", i * 100 + j)])
                    .await
                    .unwrap();
                let r = c.receipt;
                assert!(
                    r.seq
                        < Checkpoint::parse(r.checkpoint.split("\n\n").next().unwrap())
                            .unwrap()
                            .size
                );
            }
        }));
    }
    // A lost wake-up would hang here: fail instead.
    tokio::time::timeout(std::time::Duration::from_secs(60), async {
        for t in tasks {
            t.await.unwrap();
        }
    })
    .await
    .expect("every commit settles");
    let (commits, groups) = s.group_stats();
    assert_eq!(commits, 1280);
    assert!(
        groups < commits / 4,
        "{groups} groups for {commits} commits"
    );
    assert_eq!(s.head().next_seq, 1280);
}

/// Grants are found by tenant through one index lookup: another tenant's
/// grant is a miss like an unknown id (finding 10 of the review), and a
/// store written before the index gets it at open.
#[tokio::test]
async fn grants_are_looked_up_by_tenant_and_indexed_at_open() {
    use crate::domain::{Grant, Reason, Ticket};
    let dir = tempfile::tempdir().unwrap();
    let key = Arc::new(LogKey::generate("t.test/log").unwrap());
    let s = Ledger::open(dir.path(), key.clone()).unwrap();
    let (acme, globex) = (Name::parse("acme").unwrap(), Name::parse("globex").unwrap());
    let (g, requested) = Grant::request(
        &Actor::System,
        Name::parse("alice").unwrap(),
        acme.clone(),
        &Reason::parse("INC-1").unwrap(),
        &Ticket::default(),
        60,
        crate::domain::Approval::Auto,
        Timestamp(1),
    );
    let id = g.id.clone();
    s.commit(&SystemClock, |_, b, _| {
        b.put_grant(g);
        b.log(requested);
        Ok::<_, LedgerError>(())
    })
    .await
    .unwrap();
    // A later commit sees it through the view as well.
    let (seen, hidden) = s
        .commit(&SystemClock, |v, _, _| {
            Ok::<_, LedgerError>((v.tenant_grant(&acme, &id)?, v.tenant_grant(&globex, &id)?))
        })
        .await
        .unwrap()
        .0;
    assert_eq!(seen.map(|g| g.id), Some(id.clone()));
    assert!(hidden.is_none());
    let found = |s: &Ledger, t: &Name| s.driver.tenant_grant(t, &id).unwrap().map(|g| g.id);
    assert_eq!(found(&s, &acme), Some(id.clone()));
    assert_eq!(found(&s, &globex), None);
    drop(s);
    // An older store: the index is missing; it is built at open.
    {
        let db = sled_open(dir.path());
        db.open_tree("tenant_grants").unwrap().clear().unwrap();
        db.flush().unwrap();
    }
    let s = Ledger::open(dir.path(), key).unwrap();
    assert_eq!(found(&s, &acme), Some(id.clone()));
    assert_eq!(found(&s, &globex), None);
}

/// `sled::open`, waiting up to 2 s for the file lock that a ledger or
/// server just dropped may hold a moment longer (sled's background
/// threads).
fn sled_open(path: &std::path::Path) -> sled::Db {
    for _ in 0..200 {
        match sled::open(path) {
            Ok(db) => return db,
            Err(sled::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => panic!("open sled at {}: {e}", path.display()),
        }
    }
    panic!("sled at {} stayed locked for 2 s", path.display())
}

/// Followers in the process get each durable group's entries, in order,
/// as written; a group whose flush failed is not sent (it is read from
/// the store if it turns out durable).
#[tokio::test]
async fn durable_groups_reach_followers_in_memory_and_failed_ones_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let s = ledger(dir.path());
    s.append(&SystemClock, vec![probe()]).await.unwrap();
    let mut groups = s.follow_groups();
    s.append(&SystemClock, vec![probe(), probe()])
        .await
        .unwrap();
    let g = groups.try_recv().expect("the group after subscribing");
    assert_eq!(g.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2]);
    let stored: Vec<_> = s.entries_from(1).collect::<Result<_, _>>().unwrap();
    for (sent, kept) in g.iter().zip(&stored) {
        assert_eq!(sent.hash, kept.hash);
        assert_eq!(
            crate::audit::Entry::decode(&sent.bytes).unwrap(),
            kept.entry
        );
    }
    s.faults().fail_flushes(true);
    assert!(s.append(&SystemClock, vec![probe()]).await.is_err());
    s.faults().fail_flushes(false);
    s.append(&SystemClock, vec![probe()]).await.unwrap();
    let next = groups.try_recv().expect("the next durable group");
    assert!(
        next.iter().all(|e| e.seq >= 3),
        "{:?}",
        next.iter().map(|e| e.seq).collect::<Vec<_>>()
    );
    assert!(groups.try_recv().is_err(), "nothing else was sent");
}

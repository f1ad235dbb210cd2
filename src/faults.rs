//! Fault injection for tests, per server instance: a failing disk, a
//! failing flush, a panic inside a group write or a handler. Compiled only
//! into unit tests and builds with the `fault-injection` feature (the test
//! suite turns it on); the release binary contains none of it.

use std::sync::atomic::{AtomicBool, Ordering};

/// Switches a test flips on one server's [`crate::ledger::Ledger`] and RPC
/// handlers. All off by default.
#[derive(Debug, Default)]
pub struct Faults {
    write: AtomicBool,
    flush: AtomicBool,
    hang: AtomicBool,
    group_panic: AtomicBool,
    handler_panic: AtomicBool,
    panic_under_lock: AtomicBool,
}

impl Faults {
    /// Every group write fails before its transaction, as a full or
    /// failing disk would.
    pub fn fail_writes(&self, on: bool) {
        self.write.store(on, Ordering::Relaxed);
    }

    /// Every flush fails after its group's transaction succeeded.
    pub fn fail_flushes(&self, on: bool) {
        self.flush.store(on, Ordering::Relaxed);
    }

    /// Every flush waits (a hanging disk) until this is switched off.
    pub fn hang_flushes(&self, on: bool) {
        self.hang.store(on, Ordering::Relaxed);
    }

    /// Every group write panics after taking the group's rows (a bug).
    pub fn panic_in_group_writes(&self, on: bool) {
        self.group_panic.store(on, Ordering::Relaxed);
    }

    /// Every ValidateGrant handler panics at its start.
    pub fn panic_in_handlers(&self, on: bool) {
        self.handler_panic.store(on, Ordering::Relaxed);
    }

    /// Every ValidateGrant handler panics inside a commit, holding the
    /// ledger's writer lock.
    pub fn panic_under_writer_lock(&self, on: bool) {
        self.panic_under_lock.store(on, Ordering::Relaxed);
    }

    pub(crate) fn writes_fail(&self) -> bool {
        self.write.load(Ordering::Relaxed)
    }

    pub(crate) fn flushes_fail(&self) -> bool {
        self.flush.load(Ordering::Relaxed)
    }

    pub(crate) fn flushes_hang(&self) -> bool {
        self.hang.load(Ordering::Relaxed)
    }

    pub(crate) fn group_writes_panic(&self) -> bool {
        self.group_panic.load(Ordering::Relaxed)
    }

    pub(crate) fn handlers_panic(&self) -> bool {
        self.handler_panic.load(Ordering::Relaxed)
    }

    pub(crate) fn panics_under_lock(&self) -> bool {
        self.panic_under_lock.load(Ordering::Relaxed)
    }
}

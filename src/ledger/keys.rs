//! Tenant keys: crypto-shredding of a tenant's personal details.
//!
//! Every tenant gets its own AES-256-GCM key the first time one of its
//! entries carries a personal detail ([`detail::PERSONAL`]: reasons,
//! tickets, notes, resources, actions, messages). The ledger seals those
//! details into the entry's ciphertext before hashing it (entry format
//! version 2, [`crate::audit::entry`]), and the grants' reasons, tickets
//! and notes into their stored records, so nothing of them reaches the
//! database in the clear. Destroying the key ([`TenantKeys::destroy`], at
//! the end of `tenant terminate`) erases them for good while every hash,
//! proof and checkpoint stays valid: they cover the ciphertext.
//!
//! The keys live outside the database, one file per tenant
//! (`<data>/tenant-keys/<tenant>.key`, 32 bytes, mode 0600, directory
//! 0700), because deleting a database value does not delete its bytes (sled
//! keeps old versions in its segments) while deleting a file does, as far as
//! the file system goes. A destroyed key leaves `<tenant>.shredded` (the
//! time, in ms) so the tenant never gets a new one and readers know why its
//! details are gone.
//!
//! The AAD binds a ciphertext to its place: `entry ‖ seq:u64be ‖ tenant` for
//! an entry, `grant ‖ id` for a grant record.

use std::{
    collections::HashMap,
    io::Write,
    path::{Path, PathBuf},
    sync::Arc,
};

use parking_lot::RwLock;
use ring::{
    aead::{Aad, LessSafeKey, NONCE_LEN, Nonce},
    rand::{SecureRandom, SystemRandom},
};

pub use crate::audit::seal::{KEY_LEN, KeyBytes, open_entry_with, parse_key};
use crate::{
    audit::{
        Entry,
        seal::{less_safe, open_with, seal_with},
    },
    domain::detail,
};

/// The directory under the data directory that holds the keys.
pub const KEYS_DIR: &str = "tenant-keys";

/// The tenant keys of one data directory.
pub struct TenantKeys {
    dir: PathBuf,
    cache: RwLock<HashMap<String, Arc<LessSafeKey>>>,
    rng: SystemRandom,
}

/// Where a tenant's key stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyState {
    /// No entry of the tenant needed one yet.
    None,
    Present,
    /// Destroyed at this time (ms since the epoch).
    Shredded(i64),
}

impl TenantKeys {
    /// The keys under `data_dir` (the directory is made when the first key is).
    pub fn new(data_dir: &Path) -> TenantKeys {
        TenantKeys {
            dir: data_dir.join(KEYS_DIR),
            cache: RwLock::new(HashMap::new()),
            rng: SystemRandom::new(),
        }
    }

    fn key_path(&self, tenant: &str) -> PathBuf {
        self.dir.join(format!("{tenant}.key"))
    }

    fn marker_path(&self, tenant: &str) -> PathBuf {
        self.dir.join(format!("{tenant}.shredded"))
    }

    pub fn state(&self, tenant: &str) -> KeyState {
        if let Ok(t) = std::fs::read_to_string(self.marker_path(tenant)) {
            return KeyState::Shredded(t.trim().parse().unwrap_or(0));
        }
        if self.cache.read().contains_key(tenant) || self.key_path(tenant).exists() {
            KeyState::Present
        } else {
            KeyState::None
        }
    }

    /// The tenant's key bytes, to hand to the tenant with its export.
    pub fn export(&self, tenant: &str) -> std::io::Result<Option<KeyBytes>> {
        match std::fs::read(self.key_path(tenant)) {
            Ok(b) => parse_key(&b).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn key(&self, tenant: &str) -> Option<Arc<LessSafeKey>> {
        if let Some(k) = self.cache.read().get(tenant) {
            return Some(k.clone());
        }
        let bytes = std::fs::read(self.key_path(tenant)).ok()?;
        let key = Arc::new(less_safe(&parse_key(&bytes).ok()?));
        self.cache.write().insert(tenant.to_owned(), key.clone());
        Some(key)
    }

    /// The tenant's key, made (and synced to disk) if it has none yet.
    /// None once the tenant's key was destroyed: its new entries stay
    /// plain, and carry no personal details by then.
    fn key_or_create(&self, tenant: &str) -> std::io::Result<Option<Arc<LessSafeKey>>> {
        if let Some(k) = self.key(tenant) {
            return Ok(Some(k));
        }
        if self.marker_path(tenant).exists() {
            return Ok(None);
        }
        create_private_dir(&self.dir)?;
        let mut bytes = [0u8; KEY_LEN];
        self.rng
            .fill(&mut bytes)
            .map_err(|_| std::io::Error::other("no randomness for a tenant key"))?;
        let path = self.key_path(tenant);
        let tmp = self.dir.join(format!("{tenant}.key.tmp"));
        {
            let mut f = private_file(&tmp)?;
            f.write_all(&hex::encode(bytes).into_bytes())?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(&self.dir)?.sync_all()?;
        let key = Arc::new(less_safe(&bytes));
        self.cache.write().insert(tenant.to_owned(), key.clone());
        Ok(Some(key))
    }

    /// Destroys the tenant's key: its sealed details can never be read
    /// again, here or in any copy of the log. The file is overwritten,
    /// synced and removed; a marker records when.
    pub fn destroy(&self, tenant: &str, at_ms: i64) -> std::io::Result<()> {
        create_private_dir(&self.dir)?;
        {
            let mut f = private_file(&self.marker_path(tenant))?;
            f.write_all(at_ms.to_string().as_bytes())?;
            f.sync_all()?;
        }
        let path = self.key_path(tenant);
        if let Ok(meta) = std::fs::metadata(&path) {
            let mut f = std::fs::OpenOptions::new().write(true).open(&path)?;
            f.write_all(&vec![0u8; meta.len() as usize])?;
            f.sync_all()?;
            std::fs::remove_file(&path)?;
        }
        std::fs::File::open(&self.dir)?.sync_all()?;
        self.cache.write().remove(tenant);
        Ok(())
    }

    /// Seals the personal details of a tenant's entry (its seq set) with the
    /// tenant's key; the entry keeps showing them ([`Sealed::opened`]).
    pub fn seal_entry(&self, e: &mut Entry) -> std::io::Result<()> {
        if e.tenant.is_empty() || e.sealed.is_some() {
            return Ok(());
        }
        if !e.details.keys().any(|k| detail::is_personal(k)) {
            return Ok(());
        }
        let Some(key) = self.key_or_create(&e.tenant)? else {
            return Ok(());
        };
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| std::io::Error::other("no randomness for a nonce"))?;
        seal_with(&key, nonce, e).map_err(|_| std::io::Error::other("sealing failed"))
    }

    /// Shows the sealed details of an entry, if its tenant's key exists.
    pub fn open_entry(&self, e: &mut Entry) {
        if !e.sealed.as_ref().is_some_and(|s| s.opened.is_empty()) {
            return;
        }
        if let Some(key) = self.key(&e.tenant) {
            if let Err(why) = open_with(&key, e) {
                tracing::warn!(seq = e.seq, tenant = %e.tenant, "{why}");
            }
        }
    }

    /// Seals a grant record's personal fields (`plain` is its JSON).
    pub fn seal_value(
        &self,
        tenant: &str,
        aad: &[u8],
        plain: &[u8],
    ) -> std::io::Result<Option<Vec<u8>>> {
        let Some(key) = self.key_or_create(tenant)? else {
            return Ok(None);
        };
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| std::io::Error::other("no randomness for a nonce"))?;
        let mut out = plain.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut out,
        )
        .map_err(|_| std::io::Error::other("sealing failed"))?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&out);
        Ok(Some(sealed))
    }

    /// Opens what [`TenantKeys::seal_value`] sealed; None without the key.
    pub fn open_value(&self, tenant: &str, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        let key = self.key(tenant)?;
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let mut buf = ct.to_vec();
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let plain = key.open_in_place(nonce, Aad::from(aad), &mut buf).ok()?;
        Some(plain.to_vec())
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
}

fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::clock::Timestamp;
    use std::collections::BTreeMap;

    fn entry(tenant: &str) -> Entry {
        Entry {
            seq: 5,
            timestamp: Timestamp(1),
            actor: "staff/alice".into(),
            tenant: tenant.into(),
            kind: "grant.requested".into(),
            details: BTreeMap::from([
                ("grant".into(), "g-1".into()),
                ("reason".into(), "INC-7 disk full on db-eu-3".into()),
            ]),
            sealed: None,
            prev_hash: [0; 32],
        }
    }

    #[test]
    fn sealed_entries_open_until_the_key_is_destroyed() {
        let dir = tempfile::tempdir().unwrap();
        let keys = TenantKeys::new(dir.path());
        let mut e = entry("acme");
        keys.seal_entry(&mut e).unwrap();
        let bytes = e.encode();
        assert!(
            !bytes.windows(6).any(|w| w == b"disk f"),
            "the reason is sealed"
        );
        assert!(
            bytes.windows(3).any(|w| w == b"g-1"),
            "structure stays plain"
        );

        let mut read = Entry::decode(&bytes).unwrap();
        assert!(!read.details.contains_key("reason"));
        keys.open_entry(&mut read);
        assert_eq!(read.details["reason"], "INC-7 disk full on db-eu-3");
        assert_eq!(read.encode(), bytes);

        // The exported key opens it offline; another tenant's does not.
        let exported = keys.export("acme").unwrap().unwrap();
        let mut offline = Entry::decode(&bytes).unwrap();
        open_entry_with(&exported, &mut offline).unwrap();
        assert_eq!(offline.details, read.details);
        let mut other = entry("globex");
        keys.seal_entry(&mut other).unwrap();
        let mut moved = Entry::decode(&bytes).unwrap();
        let globex = keys.export("globex").unwrap().unwrap();
        assert!(open_entry_with(&globex, &mut moved).is_err());
        // Moved to another seq, the ciphertext does not open (AAD).
        let mut shifted = Entry::decode(&bytes).unwrap();
        shifted.seq = 6;
        assert!(open_entry_with(&exported, &mut shifted).is_err());

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&dir.path().join(KEYS_DIR)), 0o700);
            assert_eq!(mode(&dir.path().join(KEYS_DIR).join("acme.key")), 0o600);
        }

        keys.destroy("acme", 42).unwrap();
        assert_eq!(keys.state("acme"), KeyState::Shredded(42));
        assert!(keys.export("acme").unwrap().is_none());
        let mut gone = Entry::decode(&bytes).unwrap();
        keys.open_entry(&mut gone);
        assert!(!gone.details.contains_key("reason"));
        // A fresh handle (a restart) cannot open it either, and no new key
        // is made for the tenant.
        let again = TenantKeys::new(dir.path());
        let mut e2 = entry("acme");
        again.seal_entry(&mut e2).unwrap();
        assert!(e2.sealed.is_none());
        assert_eq!(keys.state("globex"), KeyState::Present);
    }

    #[test]
    fn entries_without_a_tenant_or_personal_details_stay_version_1() {
        let dir = tempfile::tempdir().unwrap();
        let keys = TenantKeys::new(dir.path());
        let mut e = entry("");
        keys.seal_entry(&mut e).unwrap();
        assert_eq!(e.encode()[0], 1);
        let mut e = entry("acme");
        e.details.remove("reason");
        keys.seal_entry(&mut e).unwrap();
        assert_eq!(e.encode()[0], 1);
        assert_eq!(keys.state("acme"), KeyState::None);
    }

    #[test]
    fn sealed_values_open_only_with_their_aad() {
        let dir = tempfile::tempdir().unwrap();
        let keys = TenantKeys::new(dir.path());
        let s = keys
            .seal_value("acme", b"grant g-1", b"secret")
            .unwrap()
            .unwrap();
        assert_eq!(
            keys.open_value("acme", b"grant g-1", &s).unwrap(),
            b"secret"
        );
        assert!(keys.open_value("acme", b"grant g-2", &s).is_none());
        keys.destroy("acme", 1).unwrap();
        assert!(keys.open_value("acme", b"grant g-1", &s).is_none());
    }
}

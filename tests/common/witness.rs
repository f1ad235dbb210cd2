//! One witness run against a test server, as auditor `audit-reader`, with
//! the verifier keys the test gives (several during a key rotation).

use daypass::{
    audit::{
        Entry, Hash,
        note::NoteVerifier,
        witness::{self, History, LogSource, Outcome, WitnessError},
    },
    client::Clients,
    pb,
};

use super::TestServer;

pub fn hashes(v: &[Vec<u8>]) -> Vec<Hash> {
    v.iter()
        .map(|h| h.as_slice().try_into().expect("32-byte hash"))
        .collect()
}

/// Runs the witness once; an accepted checkpoint is added to `history`.
pub async fn witness_run(s: &TestServer, history: &mut History, keys: &[NoteVerifier]) -> Outcome {
    let mut c = s.audit_reader().await;
    let cp = c
        .audit
        .get_checkpoint(pb::GetCheckpointRequest::default())
        .await
        .expect("checkpoint")
        .into_inner();
    let (outcome, accepted) = witness::run(
        history,
        &cp.note,
        cp.restore_seq,
        keys,
        "now",
        &mut Source(&mut c),
    )
    .await
    .expect("witness run");
    if let Some(a) = accepted {
        history.accepted.push(a);
    }
    outcome
}

/// The test server, as the witness asks it.
struct Source<'c>(&'c mut Clients);

impl LogSource for Source<'_> {
    async fn consistency(&mut self, old: u64, new: u64) -> Result<Vec<Hash>, WitnessError> {
        let p = self
            .0
            .audit
            .get_consistency_proof(pb::GetConsistencyProofRequest {
                old_size: old,
                new_size: new,
            })
            .await
            .map_err(|e| WitnessError::Fetch(e.to_string()))?
            .into_inner();
        Ok(hashes(&p.hashes))
    }

    async fn entry_with_proof(
        &mut self,
        seq: u64,
        size: u64,
    ) -> Result<(Entry, Vec<Hash>), WitnessError> {
        let page = self
            .0
            .audit
            .get_entries(pb::GetEntriesRequest {
                start: seq,
                end: seq + 1,
            })
            .await
            .map_err(|e| WitnessError::Fetch(e.to_string()))?
            .into_inner();
        let e = page
            .entries
            .first()
            .ok_or_else(|| WitnessError::Fetch(format!("no entry {seq}")))?;
        let entry = super::sealed(e).entry;
        let p = self
            .0
            .audit
            .get_inclusion_proof(pb::GetInclusionProofRequest {
                seq,
                tree_size: size,
            })
            .await
            .map_err(|e| WitnessError::Fetch(e.to_string()))?
            .into_inner();
        Ok((entry, hashes(&p.hashes)))
    }
}

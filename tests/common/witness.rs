//! One witness run against a test server, as auditor `audit-reader`, with
//! the verifier keys the test gives (several during a key rotation).

use daypass::{
    audit::{
        Hash,
        note::NoteVerifier,
        witness::{self, History, Outcome},
    },
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
    let note = c
        .audit
        .get_checkpoint(pb::GetCheckpointRequest::default())
        .await
        .expect("checkpoint")
        .into_inner()
        .note;
    let (outcome, accepted) = witness::run(history, &note, keys, "now", async |old, new| {
        let p = c
            .audit
            .get_consistency_proof(pb::GetConsistencyProofRequest {
                old_size: old,
                new_size: new,
            })
            .await
            .map_err(|e| witness::WitnessError::Fetch(e.to_string()))?
            .into_inner();
        Ok(hashes(&p.hashes))
    })
    .await
    .expect("witness run");
    if let Some(a) = accepted {
        history.accepted.push(a);
    }
    outcome
}

//! `daypass bench timing`: can a tenant tell another tenant's real grant id
//! from an unknown one by how long ValidateGrant takes? Both are answered
//! "unknown"; they must also take the same time (tenant isolation; finding
//! 10 of the independent review).
//!
//! Method: the real server over real mutual TLS, one call in flight, `pairs`
//! pairs of calls in random order within each pair (another tenant's real
//! grant id, a random well-formed id). Reported: both medians, the median of
//! the paired differences, and a sign test over the pairs (z; |z| below 2
//! is what two indistinguishable paths give).

use std::time::Instant;

use super::{
    service::{ready, start_server},
    tree::{Rng, err, scratch_dir},
};
use daypass::{domain::PrincipalKind, pb};

/// What `daypass bench timing` runs.
#[derive(Clone, Debug)]
pub struct TimingOptions {
    pub pairs: usize,
    pub dir: Option<std::path::PathBuf>,
}

pub async fn timing(opts: &TimingOptions) -> Result<String, String> {
    if opts.pairs == 0 {
        return Err("--pairs must be above 0".into());
    }
    let dir = scratch_dir(opts.dir.as_deref())?;
    let result = run(opts, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn run(opts: &TimingOptions, dir: &std::path::Path) -> Result<String, String> {
    let setup = start_server(dir, true).await?;
    let mut admin = ready(&setup).await?;
    admin
        .staff
        .add_staff(pb::AddStaffRequest {
            name: "holder".into(),
            role: pb::Role::Support as i32,
            country: String::new(),
            organisation: String::new(),
        })
        .await
        .map_err(err)?;
    for t in ["mine", "theirs"] {
        admin
            .tenants
            .add_tenant(pb::AddTenantRequest {
                name: t.into(),
                approval: pb::ApprovalPolicy::Auto as i32,
                require_ticket: false,
                require_declaration: false,
                ..Default::default()
            })
            .await
            .map_err(err)?;
    }
    let mut holder = setup.connect(PrincipalKind::Staff, "holder").await?;
    let theirs = holder
        .grants
        .request_grant(pb::RequestGrantRequest {
            tenant: "theirs".into(),
            reason: "bench: another tenant's grant".into(),
            ticket: String::new(),
            duration_seconds: 0,
            ..Default::default()
        })
        .await
        .map_err(err)?
        .into_inner()
        .id;
    let mut tenant = setup.connect(PrincipalKind::Tenant, "mine").await?;
    let mut rng = Rng(0x7131_1e55_0000_000a);
    let mut call = async |id: String| -> Result<f64, String> {
        let started = Instant::now();
        let r = tenant
            .grants
            .validate_grant(pb::ValidateGrantRequest {
                subject: Some(pb::validate_grant_request::Subject::GrantId(id)),
                ..Default::default()
            })
            .await
            .map_err(err)?
            .into_inner();
        if r.allowed || !r.grant_id.is_empty() {
            return Err("another tenant's grant was not answered as unknown".into());
        }
        Ok(started.elapsed().as_secs_f64() * 1e6)
    };
    // Warm-up.
    for _ in 0..50 {
        call(theirs.clone()).await?;
    }
    let (mut real, mut random, mut diffs) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..opts.pairs {
        let unknown = format!("g-{:016x}{:08x}", rng.next(), rng.next() >> 32);
        let (a, b) = if rng.below(2) == 0 {
            let a = call(theirs.clone()).await?;
            (a, call(unknown).await?)
        } else {
            let b = call(unknown).await?;
            (call(theirs.clone()).await?, b)
        };
        real.push(a);
        random.push(b);
        diffs.push(a - b);
    }
    let _ = setup.stop.send(());
    let _ = setup.server.await;
    let slower = diffs.iter().filter(|d| **d > 0.0).count() as f64;
    let faster = diffs.iter().filter(|d| **d < 0.0).count() as f64;
    let z = (slower - faster) / (slower + faster).max(1.0).sqrt();
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    Ok(format!(
        "## Timing: another tenant's grant id vs an unknown id\n\n\
         ValidateGrant, one call in flight over one mutual-TLS connection, {} interleaved pairs.\n\n\
         | another tenant's grant (µs, median) | unknown id (µs, median) | paired difference (µs, median) | sign test z |\n\
         |---:|---:|---:|---:|\n\
         | {:.1} | {:.1} | {:+.1} | {:+.2} |\n",
        opts.pairs,
        median(&mut real),
        median(&mut random),
        median(&mut diffs),
        z
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Smoke mode: a few pairs, so the benchmark never rots.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_timing_bench_runs() {
        let dir = tempfile::tempdir().unwrap();
        let report = timing(&TimingOptions {
            pairs: 20,
            dir: Some(dir.path().to_owned()),
        })
        .await
        .unwrap();
        assert!(report.contains("sign test z"), "{report}");
    }
}

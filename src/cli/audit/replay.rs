//! Reading the log as people: `daypass audit replay` tells who had access
//! to which tenant, when, why and what they did (from the server, or
//! offline from an export); `daypass audit tail` follows the log as it is
//! written. The replay rules live in `crate::audit::replay`.

use std::{io::BufReader, path::Path};

use serde_json::json;

use super::{open, sealed_from_pb};
use crate::{
    audit::{export, replay},
    cli::{CliError, CliResult, Connection, connect::connect, output},
    clock::Timestamp,
    pb,
};

/// The replay filter as given on the command line, not yet parsed.
pub(super) struct Flags {
    pub tenant: Option<String>,
    pub person: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
}

/// `audit replay --file F`: offline, from an export.
pub(super) fn from_file(file: &Path, flags: Flags, json_out: bool) -> CliResult {
    let filter = parse_filter(flags)?;
    let mut lines = export::Lines::new(BufReader::new(open(file)?));
    let mut entries = Vec::new();
    while let Some((_, e)) = lines
        .next_entry()
        .map_err(|(_, p)| cli_err!("{}: {}", file.display(), p.detail))?
    {
        entries.push(e);
    }
    print_stories(&entries, &filter, json_out)
}

/// `audit replay`: the whole log, streamed from the server.
pub(super) async fn from_server(conn: &Connection, flags: Flags, json_out: bool) -> CliResult {
    let mut c = connect(conn).await?;
    let filter = parse_filter(flags)?;
    let mut stream = c
        .audit
        .stream_entries(pb::StreamEntriesRequest {
            from_seq: 0,
            follow: false,
            purpose: pb::ReadPurpose::Replay as i32,
            last: 0,
        })
        .await?
        .into_inner();
    let mut entries = Vec::new();
    while let Some(e) = stream.message().await? {
        entries.push(sealed_from_pb(&e)?);
    }
    print_stories(&entries, &filter, json_out)
}

/// `audit tail [--from N]`: follows the log until the server ends the stream.
pub(super) async fn tail(conn: &Connection, from: Option<u64>, json_out: bool) -> CliResult {
    let mut c = connect(conn).await?;
    let mut stream = c
        .audit
        .stream_entries(pb::StreamEntriesRequest {
            from_seq: from.unwrap_or(0),
            follow: true,
            purpose: pb::ReadPurpose::Tail as i32,
            last: if from.is_some() { 0 } else { 10 },
        })
        .await?
        .into_inner();
    while let Some(e) = stream.message().await? {
        if json_out {
            println!("{}", export::to_json(&sealed_from_pb(&e)?));
        } else {
            println!("{}", output::entry_line(&e));
        }
    }
    Ok(())
}

fn print_stories(
    entries: &[crate::audit::SealedEntry],
    filter: &replay::Filter,
    json_out: bool,
) -> CliResult {
    if let Some(why) = replay::unknown_names(entries, filter) {
        return Err(cli_err!("{why}"));
    }
    let alerts = replay::alerts(entries, filter);
    let stories = replay::replay(entries.iter().cloned(), filter);
    if json_out {
        let v: Vec<_> = stories
            .iter()
            .map(|s| json!({
                "grant": s.grant, "tenant": s.tenant, "holder": s.holder, "reason": s.reason, "ticket": s.ticket, "reason_code": s.reason_code,
                "requested_at": s.requested_at.to_rfc3339(), "activated_at": s.activated_at.map(|t| t.to_rfc3339()),
                "ended_at": s.ended_at.map(|t| t.to_rfc3339()), "outcome": s.outcome,
                "decisions": s.decided_by.iter().map(|(w, by)| json!({"what": w, "by": by})).collect::<Vec<_>>(),
                "validations_allowed": s.validations_allowed,
                "accesses": s.accesses.iter().map(|a| json!({"time": a.at.to_rfc3339(), "action": a.action, "resource": a.resource, "reported_at": a.reported_at.map(|t| t.to_rfc3339()), "within_grant": a.within_grant})).collect::<Vec<_>>(),
                "expires_at": s.expires_at.map(|t| t.to_rfc3339()), "expiry_unlogged": s.expiry_unlogged,
            }))
            .collect();
        let a: Vec<_> = alerts
            .iter()
            .map(|a| json!({
                "alert": a.alert, "rule": a.rule, "severity": a.severity, "tenant": a.tenant,
                "subject": a.subject, "summary": a.summary, "raised_at": a.raised_at.to_rfc3339(),
                "trigger_seqs": a.trigger_seqs,
                "decisions": a.decisions.iter().map(|(w, by, at, note)| json!({"what": w, "by": by, "at": at.to_rfc3339(), "note": note})).collect::<Vec<_>>(),
            }))
            .collect();
        println!("{:#}", json!({"grants": v, "alerts": a}));
    } else {
        print!("{}", replay::render(&stories));
        print!("{}", replay::render_alerts(&alerts));
    }
    Ok(())
}

/// A time as typed for `--since`/`--until`: RFC 3339
/// (`2026-11-25T09:00:00Z`, any offset), a time without a zone, taken as
/// UTC (`2026-11-25T09:00`, `2026-11-25 09:00:00`), a date (its midnight,
/// UTC), or a duration back from `now` (`1h`, `90m`, `2d`).
pub fn parse_when(s: &str, now: Timestamp) -> Option<Timestamp> {
    let s = s.trim();
    if let Some(t) = Timestamp::parse_rfc3339(s) {
        return Some(t);
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, f) {
            return Some(Timestamp(t.and_utc().timestamp_millis()));
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some(Timestamp(
            d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis(),
        ));
    }
    let secs = crate::cli::parse_duration(s).ok()?;
    Some(Timestamp(
        now.millis().checked_sub(secs.checked_mul(1000)?)?,
    ))
}

fn parse_filter(flags: Flags) -> Result<replay::Filter, CliError> {
    use crate::clock::Clock as _;
    let now = crate::clock::SystemClock.now();
    let time = |s: Option<String>, flag: &str| -> Result<Option<Timestamp>, CliError> {
        s.map(|s| {
            parse_when(&s, now).ok_or_else(|| {
                cli_err!(
                    "--{flag} {s:?} is not a time: give an RFC 3339 time (2026-11-25T09:00:00Z), a UTC time without a zone (2026-11-25 09:00), a date, or how long ago (1h, 2d)"
                )
            })
        })
        .transpose()
    };
    Ok(replay::Filter {
        tenant: flags.tenant,
        person: flags.person,
        since: time(flags.since, "since")?,
        until: time(flags.until, "until")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_and_until_take_zones_zoneless_times_dates_and_durations_back() {
        let now = Timestamp::parse_rfc3339("2026-12-02T12:00:00Z").unwrap();
        let t = |s: &str| parse_when(s, now).map(Timestamp::to_rfc3339);
        assert_eq!(
            t("2026-11-25T09:00:00Z").as_deref(),
            Some("2026-11-25T09:00:00.000Z")
        );
        assert_eq!(
            t("2026-11-25T10:00:00+01:00").as_deref(),
            Some("2026-11-25T09:00:00.000Z")
        );
        assert_eq!(
            t("2026-11-25T09:00").as_deref(),
            Some("2026-11-25T09:00:00.000Z")
        );
        assert_eq!(
            t("2026-11-25 09:00:30").as_deref(),
            Some("2026-11-25T09:00:30.000Z")
        );
        assert_eq!(t("2026-11-25").as_deref(), Some("2026-11-25T00:00:00.000Z"));
        assert_eq!(t("1h").as_deref(), Some("2026-12-02T11:00:00.000Z"));
        assert_eq!(t("2d").as_deref(), Some("2026-11-30T12:00:00.000Z"));
        for bad in ["yesterday", "2026-13-45T99:00:00Z", "", "-1h"] {
            assert_eq!(t(bad), None, "{bad}");
        }
    }
}

//! Access reports: for one tenant and period, who had access when, why and
//! what they did, proven complete (docs/compliance/reports.md).
//!
//! A report is anchored on a `report.generated` entry in the tenant's scope
//! (logged by `RecordReport`). From it the scope's links (`scope_prev`,
//! docs/log-format.md §9) are followed back ([`select`]) until an entry
//! logged before the *horizon* (the period's start minus 24 h, the longest
//! a grant lives) with the request of every grant seen since found: every
//! entry of the scope logged from there to the anchor is then on the path,
//! because each link names the scope's previous entry. The report's slice
//! is exactly that path, each entry with its inclusion proof in a signed
//! checkpoint; a verifier walks the same path and finds any missing entry
//! as a link to a seq that is not in the slice.
//!
//! What a person reads ([`render`]) is derived from the slice alone and
//! deterministically, so a verifier re-renders it and compares bytes:
//! `report.html` (everything escaped), `grants.csv` and `accesses.csv`
//! (RFC 4180, CRLF, and a leading `'` on any field a spreadsheet would take
//! for a formula).

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
};

use super::{
    Entry, SealedEntry,
    note::Checkpoint,
    replay::{self, Filter, GrantStory},
    state::scopes::parse_links,
};
use crate::{
    clock::Timestamp,
    domain::{EventKind, MAX_GRANT_SECS, detail, text::escape_html as esc},
    policy::tenant_scopes,
};

/// The report's own entry: `report.generated` for `tenant` and
/// `[from, to)`, logged at `at` by `by`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Anchor {
    pub seq: u64,
    pub tenant: String,
    pub from: Timestamp,
    pub to: Timestamp,
    pub at: Timestamp,
    pub by: String,
}

impl Anchor {
    /// Reads `e` as a report's entry.
    pub fn of(e: &Entry) -> Result<Anchor, String> {
        if e.kind != EventKind::ReportGenerated.as_str() {
            return Err(format!(
                "entry {} is {}, not the report's {} entry",
                e.seq,
                e.kind,
                EventKind::ReportGenerated.as_str()
            ));
        }
        let time = |k: &str| {
            e.details
                .get(k)
                .and_then(|t| Timestamp::parse_rfc3339(t))
                .ok_or_else(|| format!("entry {}: {k} is missing or not an RFC 3339 time", e.seq))
        };
        let (from, to) = (time(detail::PERIOD_FROM)?, time(detail::PERIOD_TO)?);
        if e.tenant.is_empty() || from >= to {
            return Err(format!(
                "entry {}: a report names a tenant and a non-empty period",
                e.seq
            ));
        }
        Ok(Anchor {
            seq: e.seq,
            tenant: e.tenant.clone(),
            from,
            to,
            at: e.timestamp,
            by: e.actor.clone(),
        })
    }

    /// Entries logged before this are not needed: a grant active in the
    /// period was activated at or after it.
    pub fn horizon(&self) -> Timestamp {
        self.from.plus_secs(-MAX_GRANT_SECS)
    }
}

/// Where the walk back from the anchor stopped, and so what the slice
/// proves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coverage {
    /// At entry `seq`, logged before the horizon, with every grant's
    /// request found: the slice holds every entry of the scope from `seq`
    /// to the anchor.
    Complete { seq: u64 },
    /// At the scope's first entry: the slice holds the whole scope up to
    /// the anchor.
    FromStart { seq: u64 },
    /// At entry `seq`, logged at `at` before the scope had links: the
    /// slice holds every entry of the scope from `seq` on; for earlier ones
    /// there is no proof.
    FromUnlinked { seq: u64, at: Timestamp },
}

impl Coverage {
    fn first_seq(self) -> u64 {
        match self {
            Coverage::Complete { seq }
            | Coverage::FromStart { seq }
            | Coverage::FromUnlinked { seq, .. } => seq,
        }
    }
}

/// The path from the anchor back: its seqs (ascending) and where it ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    pub seqs: Vec<u64>,
    pub coverage: Coverage,
}

/// Follows `anchor`'s tenant scope back through `get` (the entries at
/// hand). Fails on a link to an entry `get` does not have (the slice is
/// incomplete), a malformed link, an entry outside the scope or a time
/// that goes back.
pub fn select<'a>(
    anchor: &Anchor,
    get: impl Fn(u64) -> Option<&'a Entry>,
) -> Result<Selection, String> {
    let tenant = anchor.tenant.as_str();
    let horizon = anchor.horizon();
    let mut cur = get(anchor.seq).ok_or_else(|| format!("entry {} is missing", anchor.seq))?;
    let mut seqs = Vec::new();
    // Grants seen since the horizon whose `grant.requested` is not reached.
    let mut open: BTreeSet<&str> = BTreeSet::new();
    let coverage = loop {
        seqs.push(cur.seq);
        let grant = cur.details.get(detail::GRANT).map(String::as_str);
        if let Some(g) = grant {
            if cur.timestamp >= horizon {
                open.insert(g);
            }
            if cur.kind == EventKind::GrantRequested.as_str() {
                open.remove(g);
            }
        }
        if cur.timestamp < horizon && open.is_empty() {
            break Coverage::Complete { seq: cur.seq };
        }
        let Some(links) = cur.details.get(detail::SCOPE_PREV) else {
            break Coverage::FromUnlinked {
                seq: cur.seq,
                at: cur.timestamp,
            };
        };
        let prev = parse_links(links)
            .and_then(|l| l.into_iter().find(|(t, _)| *t == tenant))
            .ok_or_else(|| {
                format!(
                    "entry {}: {} {links:?} has no link for tenant {tenant}",
                    cur.seq,
                    detail::SCOPE_PREV
                )
            })?
            .1;
        let Some(prev) = prev else {
            break Coverage::FromStart { seq: cur.seq };
        };
        let next = get(prev).ok_or_else(|| {
            format!(
                "entry {prev} is missing: entry {} names it as tenant {tenant}'s previous entry, \
                 so the slice is not complete",
                cur.seq
            )
        })?;
        if prev >= cur.seq || !tenant_scopes(next).any(|t| t == tenant) {
            return Err(format!(
                "entry {}: its link to {prev} does not lead back into tenant {tenant}'s scope",
                cur.seq
            ));
        }
        if next.timestamp > cur.timestamp {
            return Err(format!(
                "entry {prev} is logged after entry {}, which follows it",
                cur.seq
            ));
        }
        cur = next;
    };
    seqs.reverse();
    Ok(Selection { seqs, coverage })
}

/// Checks that `slice` (ascending, its last entry the anchor) is exactly
/// the path [`select`] walks, and returns the anchor and the coverage.
pub fn check_slice(slice: &[SealedEntry]) -> Result<(Anchor, Coverage), String> {
    let last = slice
        .last()
        .ok_or("the slice is empty: a report's slice ends with its report.generated entry")?;
    let anchor = Anchor::of(&last.entry)?;
    let by_seq: BTreeMap<u64, &Entry> = slice.iter().map(|e| (e.entry.seq, &e.entry)).collect();
    let sel = select(&anchor, |s| by_seq.get(&s).copied())?;
    if let Some(extra) = by_seq.keys().find(|s| sel.seqs.binary_search(s).is_err()) {
        return Err(format!(
            "entry {extra} is in the slice but not on tenant {}'s path back from the report's entry {}",
            anchor.tenant, anchor.seq
        ));
    }
    Ok((anchor, sel.coverage))
}

/// A rendered report: the three files a person reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    pub html: String,
    pub grants_csv: String,
    pub accesses_csv: String,
}

/// The file names in a report's directory.
pub const SLICE_FILE: &str = "slice.jsonl";
pub const CHECKPOINT_FILE: &str = "checkpoint.txt";
pub const HTML_FILE: &str = "report.html";
pub const GRANTS_FILE: &str = "grants.csv";
pub const ACCESSES_FILE: &str = "accesses.csv";

/// The columns of `grants.csv`.
pub const GRANT_COLUMNS: [&str; 15] = [
    "grant",
    "holder",
    "reason",
    "ticket",
    "requested_at",
    "activated_at",
    "expires_at",
    "ended_at",
    "outcome",
    "decided_by",
    "accesses",
    "validations_allowed",
    "requested_seq",
    "break_glass",
    "review",
];

/// The columns of `accesses.csv`.
pub const ACCESS_COLUMNS: [&str; 8] = [
    "seq",
    "at",
    "reported_at",
    "grant",
    "holder",
    "action",
    "resource",
    "within_grant",
];

/// What the report shows, from its checked slice.
struct Content<'a> {
    anchor: &'a Anchor,
    coverage: Coverage,
    stories: Vec<GrantStory>,
    /// (story index, access index), by time then seq.
    accesses: Vec<(usize, usize)>,
    /// Entries of the period no shown grant accounts for.
    others: Vec<&'a Entry>,
}

fn content<'a>(anchor: &'a Anchor, coverage: Coverage, slice: &'a [SealedEntry]) -> Content<'a> {
    let in_period = |t: Timestamp| anchor.from <= t && t < anchor.to;
    let stories = replay::replay(
        slice.iter().cloned(),
        &Filter {
            tenant: Some(anchor.tenant.clone()),
            person: None,
            since: Some(anchor.from),
            until: Some(anchor.to),
        },
    );
    let mut accesses: Vec<(usize, usize)> = stories
        .iter()
        .enumerate()
        .flat_map(|(i, s)| {
            s.accesses
                .iter()
                .enumerate()
                .filter(|(_, a)| in_period(a.at))
                .map(move |(j, _)| (i, j))
        })
        .collect();
    accesses.sort_by_key(|&(i, j)| {
        let a = &stories[i].accesses[j];
        (a.at, a.seq)
    });
    let shown: BTreeSet<&str> = stories.iter().map(|s| s.grant.as_str()).collect();
    let told = |e: &Entry| {
        let by_story = e.kind.starts_with("grant.")
            || e.kind == EventKind::AccessRecorded.as_str()
            || e.kind == EventKind::ValidationAllowed.as_str();
        by_story
            && e.details
                .get(detail::GRANT)
                .is_some_and(|g| shown.contains(g.as_str()))
    };
    let others = slice
        .iter()
        .map(|e| &e.entry)
        .filter(|e| in_period(e.timestamp) && e.seq != anchor.seq && !told(e))
        .collect();
    Content {
        anchor,
        coverage,
        stories,
        accesses,
        others,
    }
}

/// Renders the report from its checked slice and the checkpoint note it
/// is proven against.
pub fn render(
    anchor: &Anchor,
    coverage: Coverage,
    slice: &[SealedEntry],
    note: &str,
    checkpoint: &Checkpoint,
) -> Rendered {
    let c = content(anchor, coverage, slice);
    Rendered {
        html: html(&c, slice.len(), note, checkpoint),
        grants_csv: grants_csv(&c),
        accesses_csv: accesses_csv(&c),
    }
}

fn opt_time(t: Option<Timestamp>) -> String {
    t.map(Timestamp::to_rfc3339).unwrap_or_default()
}

fn decided(s: &GrantStory) -> String {
    s.decided_by
        .iter()
        .map(|(what, who)| format!("{what} by {who}"))
        .collect::<Vec<_>>()
        .join("; ")
}

fn outcome(s: &GrantStory) -> String {
    match (&s.outcome, s.activated_at) {
        (Some(o), _) => o.clone(),
        (None, Some(_)) => "active".into(),
        (None, None) => "pending".into(),
    }
}

/// What the slice proves, in one sentence or two.
pub fn coverage_text(anchor: &Anchor, coverage: Coverage) -> String {
    let mut s = match coverage {
        Coverage::Complete { seq } => format!(
            "Complete: every entry of tenant {}'s scope from seq {seq} to the report's entry (seq {}) \
             is in the slice, each proven in the signed tree; seq {seq} was logged before {} \
             (24 h before the period), and every grant seen since has its request in the slice.",
            anchor.tenant,
            anchor.seq,
            anchor.horizon()
        ),
        Coverage::FromStart { seq } => format!(
            "Complete: the slice holds tenant {}'s whole scope, from its first entry (seq {seq}) to \
             the report's entry (seq {}), each proven in the signed tree.",
            anchor.tenant, anchor.seq
        ),
        Coverage::FromUnlinked { seq, at } => format!(
            "Complete only from seq {seq} ({at}) on: entries of tenant {}'s scope before it were \
             written before scope links existed, so nothing proves none is missing{}.",
            anchor.tenant,
            if at > anchor.horizon() {
                "; this period's beginning is not proven complete"
            } else {
                ""
            }
        ),
    };
    if anchor.at < anchor.to {
        let _ = write!(
            s,
            " The period ends after the report was made ({}): later entries are not in it.",
            anchor.at
        );
    }
    s
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em;max-width:80em}\
table{border-collapse:collapse;margin-bottom:1.5em}\
th,td{border:1px solid #999;padding:.25em .5em;text-align:left;vertical-align:top}\
th{background:#eee}dt{font-weight:bold}pre{background:#f4f4f4;padding:.5em}\
.alarm{color:#b00}";

fn html(c: &Content, entries: usize, note: &str, cp: &Checkpoint) -> String {
    let a = c.anchor;
    let t = esc(&a.tenant);
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>Access report: {t}, {} to {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>Access report for tenant {t}</h1>\n<dl>\n\
         <dt>Period</dt><dd>{} to {} (UTC; the end is not included)</dd>\n\
         <dt>Made</dt><dd>{} by {}, as log entry {}</dd>\n\
         <dt>Log</dt><dd>{}, tree of {} entries, root {}</dd>\n\
         <dt>Slice</dt><dd>{entries} entries of the tenant's scope, seq {} to {}</dd>\n\
         <dt>Coverage</dt><dd>{}</dd>\n</dl>\n",
        a.from,
        a.to,
        a.from,
        a.to,
        a.at,
        esc(&a.by),
        a.seq,
        esc(&cp.origin),
        cp.size,
        hex::encode(cp.root),
        c.coverage.first_seq(),
        a.seq,
        esc(&coverage_text(a, c.coverage)),
    );
    let unreviewed: Vec<&GrantStory> = c
        .stories
        .iter()
        .filter(|s| s.break_glass && s.review.is_none())
        .collect();
    if !unreviewed.is_empty() {
        let _ = write!(
            h,
            "<h2 class=\"alarm\">UNREVIEWED BREAK-GLASS GRANTS ({})</h2>\n<p>Opened in an emergency \
             without approval, and not yet reviewed by a second person (<code>daypass grant review</code>).</p>\n",
            unreviewed.len()
        );
        table(
            &mut h,
            &["grant", "holder", "activated_at", "reason"],
            unreviewed.iter().map(|s| {
                vec![
                    s.grant.clone(),
                    s.holder.clone(),
                    opt_time(s.activated_at),
                    s.reason.clone(),
                ]
            }),
        );
    }
    let _ = write!(
        h,
        "<h2>Grants ({})</h2>\n<p>Every grant for this tenant whose life (request to end) overlaps the period.</p>\n",
        c.stories.len()
    );
    table(
        &mut h,
        &GRANT_COLUMNS,
        c.stories.iter().map(|s| grant_row(s).to_vec()),
    );
    let _ = write!(
        h,
        "<h2>Accesses ({})</h2>\n<p>What the tenant recorded that the engineers did during the period.</p>\n",
        c.accesses.len()
    );
    table(
        &mut h,
        &ACCESS_COLUMNS,
        c.accesses
            .iter()
            .map(|&(i, j)| access_row(&c.stories[i], j).to_vec()),
    );
    let _ = write!(
        h,
        "<h2>Other entries in the period ({})</h2>\n<p>Entries of the tenant's scope logged in the period that the tables above do not tell.</p>\n",
        c.others.len()
    );
    table(
        &mut h,
        &["seq", "time", "actor", "kind"],
        c.others.iter().map(|e| {
            vec![
                e.seq.to_string(),
                e.timestamp.to_rfc3339(),
                e.actor.clone(),
                e.kind.clone(),
            ]
        }),
    );
    let _ = write!(
        h,
        "<h2>How to check this report</h2>\n<p><code>daypass report verify DIR --log-key log.pub</code> \
         checks the checkpoint's signature, every entry's inclusion proof, that no entry of the \
         scope is missing, and that this page and both CSV files are exactly what the slice says.</p>\n\
         <h2>Signed checkpoint</h2>\n<pre>{}</pre>\n</body>\n</html>\n",
        esc(note)
    );
    h
}

fn table(h: &mut String, head: &[&str], rows: impl Iterator<Item = Vec<String>>) {
    h.push_str("<table>\n<tr>");
    for col in head {
        let _ = write!(h, "<th>{}</th>", esc(col));
    }
    h.push_str("</tr>\n");
    for row in rows {
        h.push_str("<tr>");
        for cell in row {
            let _ = write!(h, "<td>{}</td>", esc(&cell));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
}

fn grant_row(s: &GrantStory) -> [String; 15] {
    [
        s.grant.clone(),
        s.holder.clone(),
        s.reason.clone(),
        s.ticket.clone(),
        s.requested_at.to_rfc3339(),
        opt_time(s.activated_at),
        opt_time(s.expires_at),
        opt_time(s.ended_at),
        outcome(s),
        decided(s),
        s.accesses.len().to_string(),
        s.validations_allowed.to_string(),
        s.requested_seq.to_string(),
        s.break_glass.to_string(),
        if s.break_glass {
            replay::review_text(s)
        } else {
            String::new()
        },
    ]
}

fn access_row(s: &GrantStory, j: usize) -> [String; 8] {
    let a = &s.accesses[j];
    [
        a.seq.to_string(),
        a.at.to_rfc3339(),
        opt_time(a.reported_at),
        s.grant.clone(),
        s.holder.clone(),
        a.action.clone(),
        a.resource.clone(),
        a.within_grant.to_string(),
    ]
}

fn grants_csv(c: &Content) -> String {
    let mut out = String::new();
    csv_row(&mut out, GRANT_COLUMNS.iter().map(|s| s.to_string()));
    for s in &c.stories {
        csv_row(&mut out, grant_row(s));
    }
    out
}

fn accesses_csv(c: &Content) -> String {
    let mut out = String::new();
    csv_row(&mut out, ACCESS_COLUMNS.iter().map(|s| s.to_string()));
    for &(i, j) in &c.accesses {
        csv_row(&mut out, access_row(&c.stories[i], j));
    }
    out
}

/// One RFC 4180 record, CRLF-terminated.
fn csv_row(out: &mut String, fields: impl IntoIterator<Item = String>) {
    for (i, f) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&csv_field(&f));
    }
    out.push_str("\r\n");
}

/// A field that a spreadsheet would run as a formula (it starts with `=`,
/// `+`, `-`, `@`, tab or CR) gets a leading `'`; then RFC 4180 quoting.
pub fn csv_field(s: &str) -> String {
    let guarded = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    crate::siem::csv::field(&guarded).into_owned()
}

/// One tenant's line in the index of an annual report across tenants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexRow {
    pub anchor: Anchor,
    pub coverage: Coverage,
    pub grants: usize,
    pub accesses: usize,
    pub others: usize,
}

impl IndexRow {
    /// The row for a checked slice.
    pub fn of(anchor: &Anchor, coverage: Coverage, slice: &[SealedEntry]) -> IndexRow {
        let c = content(anchor, coverage, slice);
        IndexRow {
            anchor: anchor.clone(),
            coverage,
            grants: c.stories.len(),
            accesses: c.accesses.len(),
            others: c.others.len(),
        }
    }
}

/// The file names of a report across tenants (beside one directory per
/// tenant, named after it).
pub const INDEX_FILE: &str = "index.html";
pub const SUMMARY_FILE: &str = "summary.csv";

/// The columns of `summary.csv`.
pub const SUMMARY_COLUMNS: [&str; 8] = [
    "tenant",
    "from",
    "to",
    "report_seq",
    "coverage",
    "grants",
    "accesses",
    "other_entries",
];

fn coverage_word(c: Coverage) -> String {
    match c {
        Coverage::Complete { .. } => "complete".into(),
        Coverage::FromStart { .. } => "complete (whole scope)".into(),
        Coverage::FromUnlinked { seq, .. } => format!("complete from seq {seq} only"),
    }
}

fn summary_row(r: &IndexRow) -> [String; 8] {
    [
        r.anchor.tenant.clone(),
        r.anchor.from.to_rfc3339(),
        r.anchor.to.to_rfc3339(),
        r.anchor.seq.to_string(),
        coverage_word(r.coverage),
        r.grants.to_string(),
        r.accesses.to_string(),
        r.others.to_string(),
    ]
}

/// `index.html` and `summary.csv` for `rows` (sorted by tenant here).
pub fn render_index(rows: &[IndexRow]) -> (String, String) {
    let mut rows: Vec<&IndexRow> = rows.iter().collect();
    rows.sort_by(|a, b| a.anchor.tenant.cmp(&b.anchor.tenant));
    let mut csv = String::new();
    csv_row(&mut csv, SUMMARY_COLUMNS.iter().map(|s| s.to_string()));
    for r in &rows {
        csv_row(&mut csv, summary_row(r));
    }
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>Access reports across tenants</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>Access reports across tenants ({})</h1>\n\
         <p>One report per tenant, each in the directory named after it, proven on its own \
         (<code>daypass report verify DIR --log-key log.pub</code> checks them all and this page).</p>\n",
        rows.len()
    );
    h.push_str("<table>\n<tr>");
    for col in SUMMARY_COLUMNS {
        let _ = write!(h, "<th>{}</th>", esc(col));
    }
    h.push_str("</tr>\n");
    for r in &rows {
        let cells = summary_row(r);
        let t = esc(&cells[0]);
        let _ = write!(h, "<tr><td><a href=\"{t}/{HTML_FILE}\">{t}</a></td>");
        for cell in &cells[1..] {
            let _ = write!(h, "<td>{}</td>", esc(cell));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n</body>\n</html>\n");
    (h, csv)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    struct Log(Vec<Entry>);

    impl Log {
        fn push(&mut self, at_h: i64, kind: &str, grant: Option<&str>, link: Option<&str>) -> u64 {
            let seq = self.0.len() as u64;
            let mut details = BTreeMap::new();
            if let Some(g) = grant {
                details.insert(detail::GRANT.to_owned(), g.to_owned());
            }
            if let Some(l) = link {
                details.insert(detail::SCOPE_PREV.to_owned(), l.to_owned());
            }
            self.0.push(Entry {
                seq,
                timestamp: Timestamp(1_000 * HOUR + at_h * HOUR),
                actor: "system".into(),
                tenant: "acme".into(),
                kind: kind.into(),
                details,
                sealed: None,
                prev_hash: [0; 32],
            });
            seq
        }

        fn anchor(&mut self, at_h: i64, from_h: i64, to_h: i64, link: &str) -> Anchor {
            let seq = self.push(at_h, "report.generated", None, Some(link));
            let e = &mut self.0[seq as usize];
            let t = |h: i64| Timestamp(1_000 * HOUR + h * HOUR).to_rfc3339();
            e.details.insert(detail::PERIOD_FROM.into(), t(from_h));
            e.details.insert(detail::PERIOD_TO.into(), t(to_h));
            Anchor::of(e).unwrap()
        }

        fn select(&self, a: &Anchor) -> Result<Selection, String> {
            select(a, |s| self.0.get(s as usize))
        }
    }

    #[test]
    fn the_walk_stops_before_the_horizon_once_every_grant_has_its_request() {
        let mut log = Log(Vec::new());
        log.push(0, "tenant.added", None, Some("acme:-"));
        // g1 was requested 40 h before the period and activated 23 h before it.
        log.push(10, "grant.requested", Some("g1"), Some("acme:0"));
        log.push(15, "x.y", None, Some("acme:1"));
        log.push(27, "grant.activated", Some("g1"), Some("acme:2"));
        log.push(50, "grant.expired", Some("g1"), Some("acme:3"));
        let a = log.anchor(60, 50, 55, "acme:4");
        let sel = log.select(&a).unwrap();
        assert_eq!(sel.seqs, vec![1, 2, 3, 4, 5]);
        assert_eq!(sel.coverage, Coverage::Complete { seq: 1 });
    }

    #[test]
    fn a_missing_link_target_names_the_missing_entry() {
        let mut log = Log(Vec::new());
        log.push(0, "tenant.added", None, Some("acme:-"));
        log.push(30, "x.y", None, Some("acme:0"));
        let a = log.anchor(31, 30, 31, "acme:1");
        let slice: BTreeMap<u64, &Entry> = [(0, &log.0[0]), (2, &log.0[2])].into_iter().collect();
        let err = select(&a, |s| slice.get(&s).copied()).unwrap_err();
        assert!(err.starts_with("entry 1 is missing"), "{err}");
        assert_eq!(
            log.select(&a).unwrap().coverage,
            Coverage::Complete { seq: 0 }
        );
        // A scope younger than the horizon is followed to its start.
        let mut log = Log(Vec::new());
        log.push(20, "tenant.added", None, Some("acme:-"));
        let a = log.anchor(31, 30, 31, "acme:0");
        assert_eq!(
            log.select(&a).unwrap().coverage,
            Coverage::FromStart { seq: 0 }
        );
    }

    #[test]
    fn entries_before_links_existed_limit_the_coverage() {
        let mut log = Log(Vec::new());
        log.push(40, "tenant.added", None, None);
        let a = log.anchor(41, 30, 41, "acme:0");
        assert_eq!(
            log.select(&a).unwrap().coverage,
            Coverage::FromUnlinked {
                seq: 0,
                at: log.0[0].timestamp
            }
        );
        assert!(coverage_text(&a, log.select(&a).unwrap().coverage).contains("not proven"));
    }

    #[test]
    fn a_link_forward_or_back_in_time_is_refused() {
        let mut log = Log(Vec::new());
        log.push(0, "tenant.added", None, Some("acme:-"));
        let a = log.anchor(1, 0, 1, "acme:1");
        assert!(log.select(&a).unwrap_err().contains("does not lead back"));
        let mut log = Log(Vec::new());
        log.push(5, "tenant.added", None, Some("acme:-"));
        let a = log.anchor(1, 0, 1, "acme:0");
        assert!(log.select(&a).unwrap_err().contains("logged after"));
    }

    #[test]
    fn csv_fields_are_guarded_and_quoted() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(csv_field("-1+2"), "'-1+2");
        assert_eq!(csv_field("@x"), "'@x");
        assert_eq!(csv_field("a,\"b\""), "\"a,\"\"b\"\"\"");
        assert_eq!(csv_field("=a,b"), "\"'=a,b\"");
    }
}

//! Each tenant's scope is a chain of its own: every entry in a scope names
//! the previous entry of that scope in `scope_prev` (docs/log-format.md §9),
//! so a tenant's slice followed back from a proven entry is provably
//! complete. This rule checks, over the whole log, that every link names
//! the scope's previous entry and that no entry of a linked scope leaves
//! its link out. Entries written before the links existed carry none.

use std::collections::{HashMap, HashSet};

use crate::{audit::Entry, domain::detail, policy::tenant_scopes};

/// The newest entry of every scope seen so far.
#[derive(Debug, Default)]
pub(super) struct ScopeChains {
    last: HashMap<String, u64>,
    /// Scopes with a linked entry: every later entry must be linked too.
    linked: HashSet<String>,
}

impl ScopeChains {
    /// Checks `e`'s links against the entries before it.
    pub(super) fn check(&self, e: &Entry) -> Result<(), String> {
        let scopes: Vec<&str> = tenant_scopes(e).collect();
        match e.details.get(detail::SCOPE_PREV) {
            None => match scopes.iter().find(|t| self.linked.contains(**t)) {
                Some(t) => Err(format!(
                    "the entry is in tenant {t}'s scope but does not name the scope's previous entry ({})",
                    detail::SCOPE_PREV
                )),
                None => Ok(()),
            },
            Some(got) => {
                let want = self.links(&scopes);
                if *got == want {
                    Ok(())
                } else {
                    Err(format!(
                        "{} is {got:?} but the scope's previous entries are {want:?}",
                        detail::SCOPE_PREV
                    ))
                }
            }
        }
    }

    /// Takes in `e` (checked).
    pub(super) fn take(&mut self, e: &Entry) {
        let linked = e.details.contains_key(detail::SCOPE_PREV);
        for t in tenant_scopes(e) {
            if linked {
                self.linked.insert(t.to_owned());
            }
            self.last.insert(t.to_owned(), e.seq);
        }
    }

    /// What `scope_prev` must say for an entry in `scopes`.
    fn links(&self, scopes: &[&str]) -> String {
        scopes
            .iter()
            .map(|t| match self.last.get(*t) {
                Some(seq) => format!("{t}:{seq}"),
                None => format!("{t}:-"),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The links of `scope_prev` as (tenant, previous seq or `None` for the
/// scope's first entry); `None` when the value is malformed.
pub fn parse_links(value: &str) -> Option<Vec<(&str, Option<u64>)>> {
    value
        .split(' ')
        .map(|link| {
            let (t, prev) = link.rsplit_once(':')?;
            if t.is_empty() {
                return None;
            }
            match prev {
                "-" => Some((t, None)),
                n if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                    n.parse().ok().map(|n| (t, Some(n)))
                }
                _ => None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;

    fn entry(seq: u64, tenant: &str, actor: &str, link: Option<&str>) -> Entry {
        let mut details = std::collections::BTreeMap::new();
        if let Some(l) = link {
            details.insert(detail::SCOPE_PREV.to_owned(), l.to_owned());
        }
        Entry {
            seq,
            timestamp: Timestamp(0),
            actor: actor.to_owned(),
            tenant: tenant.to_owned(),
            kind: "x.y".to_owned(),
            details,
            sealed: None,
            prev_hash: [0; 32],
        }
    }

    fn apply(c: &mut ScopeChains, e: &Entry) -> Result<(), String> {
        c.check(e)?;
        c.take(e);
        Ok(())
    }

    #[test]
    fn links_must_name_the_previous_entry_of_each_scope() {
        let mut c = ScopeChains::default();
        // Written before links existed.
        apply(&mut c, &entry(0, "acme", "staff/ada", None)).unwrap();
        apply(&mut c, &entry(1, "", "staff/ada", None)).unwrap();
        apply(&mut c, &entry(2, "acme", "staff/ada", Some("acme:0"))).unwrap();
        apply(
            &mut c,
            &entry(3, "globex", "tenant/acme", Some("globex:- acme:2")),
        )
        .unwrap();
        let wrong = apply(&mut c, &entry(4, "acme", "staff/ada", Some("acme:2")));
        assert!(wrong.unwrap_err().contains("acme:3"));
        let missing = apply(&mut c, &entry(4, "acme", "staff/ada", None));
        assert!(missing.unwrap_err().contains("does not name"));
        apply(&mut c, &entry(4, "acme", "staff/ada", Some("acme:3"))).unwrap();
    }

    #[test]
    fn parses_links() {
        assert_eq!(
            parse_links("acme:3 globex:-"),
            Some(vec![("acme", Some(3)), ("globex", None)])
        );
        for bad in [
            "",
            "acme",
            "acme:",
            ":3",
            "acme:x",
            "acme:3  globex:-",
            "acme:+3",
        ] {
            assert_eq!(parse_links(bad), None, "{bad:?}");
        }
    }
}

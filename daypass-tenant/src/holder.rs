//! What a tenant requires of a grant holder's country and organisation,
//! offline ([`HolderRule`], applied by [`crate::Verifier::requiring`]): the
//! broker already refuses holders a tenant does not allow; this lets a
//! tenant check the `country` and `organisation` a credential carries
//! itself. Not here: reading them from tokens and certificates
//! ([`crate::verifier`]).

/// What a tenant requires of a holder offline ([`crate::Verifier::requiring`]),
/// on top of the broker's own rules: the countries it accepts and the
/// organisations (sub-processors) it refuses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HolderRule {
    /// Accepted countries (upper case); `None`: any. A credential without
    /// a country is refused when this is set.
    pub allowed_countries: Option<Vec<String>>,
    /// Refused organisations, e.g. a sub-processor the tenant objected to.
    pub denied_organisations: Vec<String>,
}

impl HolderRule {
    /// Why a holder of `country` and `organisation` is refused, if so.
    pub fn check(&self, country: Option<&str>, organisation: Option<&str>) -> Option<String> {
        if let Some(allowed) = &self.allowed_countries {
            match country {
                None => return Some("the credential names no country for its holder".into()),
                Some(c) if !allowed.iter().any(|a| a.eq_ignore_ascii_case(c)) => {
                    return Some(format!(
                        "the holder's country {c} is not allowed here (allowed: {})",
                        allowed.join(", ")
                    ));
                }
                Some(_) => {}
            }
        }
        if let Some(o) = organisation {
            if self.denied_organisations.iter().any(|d| d == o) {
                return Some(format!("the holder's organisation {o} is refused here"));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countries_and_organisations_are_checked_as_told() {
        let any = HolderRule::default();
        assert_eq!(any.check(None, None), None);
        let de = HolderRule {
            allowed_countries: Some(vec!["DE".into(), "AT".into()]),
            denied_organisations: vec!["nightdesk".into()],
        };
        assert_eq!(de.check(Some("DE"), Some("company")), None);
        assert_eq!(de.check(Some("at"), None), None);
        assert!(
            de.check(Some("US"), Some("company"))
                .is_some_and(|w| w.contains("US"))
        );
        assert!(
            de.check(None, Some("company"))
                .is_some_and(|w| w.contains("no country"))
        );
        assert!(
            de.check(Some("DE"), Some("nightdesk"))
                .is_some_and(|w| w.contains("nightdesk"))
        );
    }
}

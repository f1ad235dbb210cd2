//! Where staff work and for whom (the agreement's Art 3 and Art 5): a
//! [`Country`] (ISO 3166-1 alpha-2, checked against the real list), an
//! [`Organisation`] (the company itself or a registered sub-processor), the
//! EU/EEA list and the default adequacy list, a [`Subprocessor`] of the
//! register, and the parsing of every field an admin or a tenant sends.
//!
//! Not here: which rule refuses a grant and the in-memory register
//! ([`crate::service::location`]), who may change them ([`crate::policy`]).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::ids::Name;
use crate::clock::Timestamp;

/// The EU's 27 member states and the EEA's IS, LI, NO: every tenant allows
/// these unless it set its own list.
pub const EU_EEA: [&str; 30] = [
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV",
    "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "IS", "LI", "NO",
];

/// The European Commission's adequacy decisions under GDPR Art 45 as of
/// late 2026 (<https://commission.europa.eu/law/law-topic/data-protection/international-dimension-data-protection/adequacy-decisions_en>):
/// Andorra, Argentina, Canada (commercial organisations), Faroe Islands,
/// Guernsey, Israel, Isle of Man, Japan, Jersey, New Zealand, Republic of
/// Korea, Switzerland, the United Kingdom, Uruguay, and the United States
/// (organisations certified under the EU-US Data Privacy Framework). The
/// default of `[location] adequate`; operators must keep it current.
pub const DEFAULT_ADEQUATE: [&str; 15] = [
    "AD", "AR", "CA", "FO", "GG", "IL", "IM", "JP", "JE", "NZ", "KR", "CH", "GB", "UY", "US",
];

/// Every officially assigned ISO 3166-1 alpha-2 code (249).
const ISO_3166_1: [&str; 249] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

/// The longest purpose of a sub-processor, in characters.
pub const MAX_PURPOSE_CHARS: usize = 200;
/// The most countries a tenant's own list may name.
pub const MAX_ALLOWED_COUNTRIES: usize = ISO_3166_1.len();

/// An ISO 3166-1 alpha-2 country code, upper case.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Country(String);

impl Country {
    /// Parses `field`'s value: two letters of an assigned code, any case.
    pub fn parse(field: &str, value: &str) -> Result<Country, String> {
        let v = value.trim().to_ascii_uppercase();
        if v.len() == 2 && ISO_3166_1.binary_search(&v.as_str()).is_ok() {
            Ok(Country(v))
        } else {
            Err(format!(
                "{field}: {:?} is not an ISO 3166-1 alpha-2 country code (e.g. DE, FR, GB)",
                crate::domain::truncate(value, 8)
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_eu_eea(&self) -> bool {
        EU_EEA.contains(&self.0.as_str())
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses a list of country codes (comma- or space-separated in one string,
/// or one per element), sorted and without duplicates.
pub fn parse_countries<'a>(
    field: &str,
    values: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<Country>, String> {
    let mut out = Vec::new();
    for v in values {
        for code in v.split([',', ' ']).filter(|c| !c.is_empty()) {
            if out.len() >= MAX_ALLOWED_COUNTRIES {
                return Err(format!(
                    "{field}: at most {MAX_ALLOWED_COUNTRIES} countries"
                ));
            }
            out.push(Country::parse(field, code)?);
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Whom a person works for: the company itself, or a sub-processor of the
/// register (by its name).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Organisation {
    Company,
    Subprocessor(Name),
}

impl Organisation {
    /// The literal for the company itself.
    pub const COMPANY: &'static str = "company";

    /// `company`, or a sub-processor's name (whether it is registered is
    /// the caller's check).
    pub fn parse(field: &str, value: &str) -> Result<Organisation, String> {
        let v = value.trim();
        if v == Self::COMPANY {
            return Ok(Organisation::Company);
        }
        Name::parse(v).map(Organisation::Subprocessor).map_err(|_| {
            format!(
                "{field}: {:?} is neither `company` nor a sub-processor name (1 to 64 of a-z 0-9 . _ -)",
                crate::domain::truncate(v, 64)
            )
        })
    }

    pub fn as_str(&self) -> &str {
        match self {
            Organisation::Company => Self::COMPANY,
            Organisation::Subprocessor(n) => n.as_str(),
        }
    }

    pub fn subprocessor(&self) -> Option<&Name> {
        match self {
            Organisation::Company => None,
            Organisation::Subprocessor(n) => Some(n),
        }
    }
}

impl fmt::Display for Organisation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A person's recorded location: their country (unknown for records made
/// before locations existed) and whom they work for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub country: Option<Country>,
    pub organisation: Organisation,
}

impl Default for Location {
    fn default() -> Self {
        Location {
            country: None,
            organisation: Organisation::Company,
        }
    }
}

impl Location {
    /// Parses the two optional fields of an enrolment or a change: empty
    /// means unknown country, or the company.
    pub fn parse(country: &str, organisation: &str) -> Result<Location, String> {
        Ok(Location {
            country: match country.trim() {
                "" => None,
                c => Some(Country::parse("country", c)?),
            },
            organisation: match organisation.trim() {
                "" => Organisation::Company,
                o => Organisation::parse("organisation", o)?,
            },
        })
    }

    /// The country as written in entries and claims (`""` when unknown).
    pub fn country_str(&self) -> &str {
        self.country.as_ref().map(Country::as_str).unwrap_or("")
    }
}

/// A sub-processor of the register: who, where, why, and when it was
/// announced to the tenants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subprocessor {
    pub name: Name,
    pub country: Country,
    pub purpose: String,
    pub announced_at: Timestamp,
}

/// Parses a sub-processor's purpose: 1 to [`MAX_PURPOSE_CHARS`] characters,
/// no control characters.
pub fn parse_purpose(value: &str) -> Result<String, String> {
    let v = value.trim();
    if v.is_empty() || v.chars().count() > MAX_PURPOSE_CHARS || v.chars().any(char::is_control) {
        return Err(format!(
            "purpose: 1 to {MAX_PURPOSE_CHARS} characters without control characters (what the sub-processor does, e.g. \"24/7 second-line support\")"
        ));
    }
    Ok(v.to_owned())
}

/// A timestamp's day, `YYYY-MM-DD` (UTC).
pub fn day(t: Timestamp) -> String {
    chrono::DateTime::from_timestamp_millis(t.millis())
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_code_list_is_sorted_so_binary_search_works() {
        let mut sorted = ISO_3166_1;
        sorted.sort_unstable();
        assert_eq!(sorted, ISO_3166_1);
        for c in EU_EEA.iter().chain(DEFAULT_ADEQUATE.iter()) {
            assert!(Country::parse("c", c).is_ok(), "{c}");
        }
    }

    #[test]
    fn countries_are_real_codes_in_upper_case() {
        assert_eq!(Country::parse("country", "de").unwrap().as_str(), "DE");
        for bad in ["", "D", "DEU", "XX", "EU", "UK", "d3", "ÄÖ"] {
            let e = Country::parse("country", bad).unwrap_err();
            assert!(e.starts_with("country:"), "{e}");
        }
        assert_eq!(
            parse_countries("allowed", ["de, fr", "DE"]).unwrap(),
            vec![
                Country::parse("c", "DE").unwrap(),
                Country::parse("c", "FR").unwrap()
            ]
        );
    }

    #[test]
    fn organisations_are_the_company_or_a_name() {
        assert_eq!(
            Organisation::parse("o", "company").unwrap(),
            Organisation::Company
        );
        assert!(matches!(
            Organisation::parse("o", "helpdesk-gmbh").unwrap(),
            Organisation::Subprocessor(_)
        ));
        assert!(Organisation::parse("o", "Help Desk").is_err());
        assert!(Location::parse("", "").unwrap() == Location::default());
        assert!(parse_purpose(&"x".repeat(201)).is_err());
        assert!(parse_purpose("line\nbreak").is_err());
    }
}

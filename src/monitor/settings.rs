//! The `[alerts]` section: each rule on or off, with its thresholds
//! (docs/monitoring.md lists every setting), including the system-health
//! rules that sample the ledger ([`super::health`]). Parsed once, so the
//! rules never meet a malformed time or offset.

use serde::Deserialize;

/// `[alerts]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct AlertSettings {
    /// The monitor as a whole.
    pub enabled: bool,
    /// The same rule does not raise again for the same subject within this.
    pub cooldown_secs: i64,
    /// A first start (no cursor yet) judges the log from this far back.
    pub first_start_lookback_secs: i64,
    pub office_hours: OfficeHours,
    pub many_tenants: Threshold,
    pub renewal_chain: RenewalChain,
    pub denied_burst: Threshold,
    pub rate_flood: Threshold,
    pub offboarded_use: Toggle,
    pub no_access_role: Toggle,
    pub outside_grant: Toggle,
    pub root_activity: Toggle,
    pub chain_check_failed: Toggle,
    pub store_unwritable: Toggle,
    pub log_stalled: Stall,
    /// How often the system-health rules sample the ledger.
    pub health_interval_ms: u64,
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings {
            enabled: true,
            cooldown_secs: 3600,
            first_start_lookback_secs: 86400,
            office_hours: OfficeHours::default(),
            many_tenants: Threshold {
                enabled: true,
                count: 8,
                window_secs: 7200,
            },
            renewal_chain: RenewalChain::default(),
            denied_burst: Threshold {
                enabled: true,
                count: 10,
                window_secs: 600,
            },
            rate_flood: Threshold {
                enabled: true,
                count: 20,
                window_secs: 60,
            },
            offboarded_use: Toggle::on(),
            no_access_role: Toggle::on(),
            outside_grant: Toggle::on(),
            root_activity: Toggle::on(),
            chain_check_failed: Toggle::on(),
            store_unwritable: Toggle::on(),
            log_stalled: Stall::default(),
            health_interval_ms: 5000,
        }
    }
}

impl AlertSettings {
    /// How far back the rules must see to judge the next entry as if they
    /// had seen the whole log.
    pub fn lookback_secs(&self) -> i64 {
        [
            self.cooldown_secs,
            self.many_tenants.window_secs,
            self.denied_burst.window_secs,
            self.rate_flood.window_secs,
            self.renewal_chain.max_chain_secs + self.renewal_chain.gap_secs,
        ]
        .into_iter()
        .max()
        .unwrap_or(0)
    }

    /// What a config file cannot mean.
    pub fn check(&self) -> Result<(), String> {
        for (name, t) in [
            ("alerts.many_tenants", &self.many_tenants),
            ("alerts.denied_burst", &self.denied_burst),
            ("alerts.rate_flood", &self.rate_flood),
        ] {
            if t.count < 1 || t.window_secs < 1 {
                return Err(format!(
                    "{name}: count and window_secs must be at least 1 (count = {}, window_secs = {})",
                    t.count, t.window_secs
                ));
            }
        }
        if self.cooldown_secs < 0 || self.first_start_lookback_secs < 0 {
            return Err(
                "alerts.cooldown_secs and alerts.first_start_lookback_secs must not be negative"
                    .into(),
            );
        }
        let r = &self.renewal_chain;
        if r.gap_secs < 0 || r.max_chain_secs < 1 {
            return Err("alerts.renewal_chain: gap_secs ≥ 0 and max_chain_secs ≥ 1".into());
        }
        if self.log_stalled.stall_secs < 1 {
            return Err(format!(
                "alerts.log_stalled: stall_secs must be at least 1 (stall_secs = {})",
                self.log_stalled.stall_secs
            ));
        }
        if !(10..=3_600_000).contains(&self.health_interval_ms) {
            return Err(format!(
                "alerts.health_interval_ms must be between 10 and 3600000 (health_interval_ms = {})",
                self.health_interval_ms
            ));
        }
        let o = &self.office_hours;
        if o.start >= o.end {
            return Err(format!(
                "alerts.office_hours: start ({}) must be before end ({})",
                o.start, o.end
            ));
        }
        Ok(())
    }
}

/// A rule with no settings but on/off.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Toggle {
    pub enabled: bool,
}

impl Toggle {
    pub fn on() -> Toggle {
        Toggle { enabled: true }
    }
}

impl Default for Toggle {
    fn default() -> Self {
        Toggle::on()
    }
}

/// `count` or more within `window_secs`.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    #[serde(default = "yes")]
    pub enabled: bool,
    pub count: u32,
    pub window_secs: i64,
}

fn yes() -> bool {
    true
}

/// Commits waiting while the durable log has not grown for `stall_secs`.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Stall {
    pub enabled: bool,
    pub stall_secs: i64,
}

impl Default for Stall {
    fn default() -> Self {
        Stall {
            enabled: true,
            stall_secs: 60,
        }
    }
}

/// Grants of one person on one tenant, each starting within `gap_secs` of
/// the previous one's end, adding up to more than `max_chain_secs`.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RenewalChain {
    pub enabled: bool,
    pub gap_secs: i64,
    pub max_chain_secs: i64,
}

impl Default for RenewalChain {
    fn default() -> Self {
        RenewalChain {
            enabled: true,
            gap_secs: 4 * 3600,
            max_chain_secs: 86400,
        }
    }
}

/// When the office works: `start`–`end` (local time, `HH:MM`) on `days`,
/// local time being UTC plus `utc_offset` (`+01:00`; a fixed offset, so a
/// summer-time change needs a config change).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct OfficeHours {
    pub enabled: bool,
    pub start: ClockTime,
    pub end: ClockTime,
    pub days: Vec<Weekday>,
    pub utc_offset: UtcOffset,
}

impl Default for OfficeHours {
    fn default() -> Self {
        OfficeHours {
            enabled: true,
            start: ClockTime(7 * 60),
            end: ClockTime(19 * 60),
            days: vec![
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
            ],
            utc_offset: UtcOffset(60),
        }
    }
}

/// Minutes after midnight, written `HH:MM`.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(try_from = "String")]
pub struct ClockTime(pub u32);

impl TryFrom<String> for ClockTime {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let bad = || {
            format!(
                "`{s}` is not a time of day like 08:30 (24 h, HH:MM; 24:00 for midnight at the end)"
            )
        };
        let (hh, mm) = s.split_once(':').ok_or_else(bad)?;
        if !(1..=2).contains(&hh.len()) || mm.len() != 2 {
            return Err(bad());
        }
        let (h, m): (u32, u32) = (
            hh.parse().map_err(|_| bad())?,
            mm.parse().map_err(|_| bad())?,
        );
        if m >= 60 || h * 60 + m > 24 * 60 {
            return Err(bad());
        }
        Ok(ClockTime(h * 60 + m))
    }
}

impl std::fmt::Display for ClockTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

/// Minutes east of UTC, written `+HH:MM` or `-HH:MM`.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(try_from = "String")]
pub struct UtcOffset(pub i32);

impl TryFrom<String> for UtcOffset {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let bad = || format!("`{s}` is not a UTC offset like +01:00 or -05:00");
        let (sign, rest) = match s.as_bytes().first() {
            Some(b'+') => (1, &s[1..]),
            Some(b'-') => (-1, &s[1..]),
            _ => return Err(bad()),
        };
        let (h, m) = rest.split_once(':').ok_or_else(bad)?;
        if h.len() != 2 || m.len() != 2 {
            return Err(bad());
        }
        let (h, m): (i32, i32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        if h > 14 || m >= 60 {
            return Err(bad());
        }
        Ok(UtcOffset(sign * (h * 60 + m)))
    }
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Weekday {
    /// From chrono's count of days from Monday (0–6).
    pub fn from_monday(n: u32) -> Weekday {
        [
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
            Weekday::Sat,
            Weekday::Sun,
        ][(n % 7) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_offsets_parse_strictly() {
        assert_eq!(ClockTime::try_from("08:30".to_owned()), Ok(ClockTime(510)));
        assert_eq!(ClockTime::try_from("24:00".to_owned()), Ok(ClockTime(1440)));
        for bad in ["8", "25:00", "08:60", "-1:00", "08:30:00", "008:30"] {
            assert!(ClockTime::try_from(bad.to_owned()).is_err(), "{bad}");
        }
        assert_eq!(UtcOffset::try_from("+01:00".to_owned()), Ok(UtcOffset(60)));
        assert_eq!(
            UtcOffset::try_from("-05:30".to_owned()),
            Ok(UtcOffset(-330))
        );
        for bad in ["01:00", "+1:00", "+15:00", "Z"] {
            assert!(UtcOffset::try_from(bad.to_owned()).is_err(), "{bad}");
        }
        assert!(AlertSettings::default().check().is_ok());
        let mut s = AlertSettings::default();
        s.log_stalled.stall_secs = 0;
        assert!(s.check().is_err());
        let s = AlertSettings {
            health_interval_ms: 0,
            ..AlertSettings::default()
        };
        assert!(s.check().is_err());
    }
}

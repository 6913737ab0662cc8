//! Service notices (OPS-5) and their lead-time rules: a specification change at least 7
//! days ahead, a major UI change at least 30 days, planned maintenance at least 5 Japanese
//! business days (weekends and national holidays excluded) between the day of publication
//! and the day it takes effect; an emergency notice at any time, also after the fact.

use crate::calendar::business_days_between;
use crate::Timestamp;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    SpecChange,
    MajorUiChange,
    PlannedMaintenance,
    Emergency,
}

impl NoticeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SpecChange => "spec_change",
            Self::MajorUiChange => "major_ui_change",
            Self::PlannedMaintenance => "planned_maintenance",
            Self::Emergency => "emergency",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "spec_change" => Some(Self::SpecChange),
            "major_ui_change" => Some(Self::MajorUiChange),
            "planned_maintenance" => Some(Self::PlannedMaintenance),
            "emergency" => Some(Self::Emergency),
            _ => None,
        }
    }
}

/// Checks the lead time between publication and effect; the error says what is missing.
/// Days are counted in Japan's time zone.
pub fn check_lead_time(
    kind: NoticeKind,
    published: Timestamp,
    effective: Timestamp,
) -> Result<(), String> {
    const DAY: i64 = 86_400_000;
    match kind {
        NoticeKind::Emergency => Ok(()),
        NoticeKind::SpecChange if effective.0 - published.0 < 7 * DAY => Err(
            "a specification change must be announced at least 7 days before it takes effect"
                .into(),
        ),
        NoticeKind::MajorUiChange if effective.0 - published.0 < 30 * DAY => Err(
            "a major UI change must be announced at least 30 days before it takes effect".into(),
        ),
        NoticeKind::PlannedMaintenance => {
            let zone = "Asia/Tokyo";
            let (Ok(from), Ok(to)) = (
                published.day_in_zone(zone).parse::<jiff::civil::Date>(),
                effective.day_in_zone(zone).parse::<jiff::civil::Date>(),
            ) else {
                return Err("bad dates".into());
            };
            let n = business_days_between(from, to);
            if n < 5 {
                Err(format!(
                    "planned maintenance must be announced with at least 5 business days (Japanese holidays excluded) before its day; there are {n}"
                ))
            } else {
                Ok(())
            }
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        Timestamp::parse_in_zone(s, "Asia/Tokyo").unwrap()
    }

    #[test]
    fn lead_times() {
        use NoticeKind::*;
        let now = at("2026-11-16T10:00"); // a Monday
        assert!(check_lead_time(SpecChange, now, at("2026-11-22T10:00")).is_err());
        assert!(check_lead_time(SpecChange, now, at("2026-11-23T10:00")).is_ok());
        assert!(check_lead_time(MajorUiChange, now, at("2026-12-15T10:00")).is_err());
        assert!(check_lead_time(MajorUiChange, now, at("2026-12-16T10:00")).is_ok());
        // Tue 17 … Fri 20 and Tue 24 (Mon 23 is a holiday): 5 business days before Wed 25.
        assert!(check_lead_time(PlannedMaintenance, now, at("2026-11-24T02:00")).is_err());
        assert!(check_lead_time(PlannedMaintenance, now, at("2026-11-25T02:00")).is_ok());
        assert!(check_lead_time(Emergency, now, at("2026-11-15T02:00")).is_ok());
    }
}

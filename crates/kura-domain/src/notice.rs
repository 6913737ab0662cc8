//! Service notices (OPS-5) and their lead-time rules: a specification change at least 7
//! days ahead, a major UI change at least 30 days, planned maintenance at least 5 Japanese
//! business days (weekends and national holidays excluded) between the day of publication
//! and the day it takes effect; an emergency notice at any time, also after the fact.

use crate::calendar::business_days_between;
use crate::Timestamp;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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

/// The earliest effective time a notice of `kind` published at `published` may have: for a
/// planned maintenance the start (00:00, Asia/Tokyo) of the first day with five business
/// days before it; `published` itself for an emergency.
pub fn earliest_effective(kind: NoticeKind, published: Timestamp) -> Timestamp {
    const DAY: i64 = 86_400;
    match kind {
        NoticeKind::Emergency => published,
        NoticeKind::SpecChange => published.plus_secs(7 * DAY),
        NoticeKind::MajorUiChange => published.plus_secs(30 * DAY),
        NoticeKind::PlannedMaintenance => {
            let zone = "Asia/Tokyo";
            (1..120)
                .filter_map(|k| {
                    let day = published.plus_secs(k * DAY).day_in_zone(zone);
                    Timestamp::parse_in_zone(&format!("{day}T00:00"), zone)
                })
                .find(|t| check_lead_time(kind, published, *t).is_ok())
                .unwrap_or(published.plus_secs(120 * DAY))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_effective_is_the_first_time_the_rule_accepts() {
        // Friday 2026-11-20 10:00 JST; Monday 23rd is a holiday (勤労感謝の日).
        let now = Timestamp::parse_in_zone("2026-11-20T10:00", "Asia/Tokyo").unwrap();
        for kind in [
            NoticeKind::SpecChange,
            NoticeKind::MajorUiChange,
            NoticeKind::PlannedMaintenance,
            NoticeKind::Emergency,
        ] {
            let e = earliest_effective(kind, now);
            assert!(check_lead_time(kind, now, e).is_ok(), "{kind:?}");
            if kind != NoticeKind::Emergency {
                assert!(
                    check_lead_time(kind, now, Timestamp(e.0 - 86_400_000)).is_err(),
                    "{kind:?} a day earlier"
                );
            }
        }
        let pm = earliest_effective(NoticeKind::PlannedMaintenance, now);
        assert_eq!(
            pm.to_rfc3339_in_zone("Asia/Tokyo"),
            "2026-12-01T00:00:00.000+09:00",
            "the business days 24, 25, 26, 27 and 30 November lie between"
        );
    }

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

//! Japanese business days (OPS-5: planned maintenance is announced at least 5 business
//! days ahead): weekends and the national holidays of Japan (国民の祝日), with substitute
//! holidays (振替休日) and citizens' holidays (国民の休日), computed for 2000–2099. The
//! equinoxes use the standard approximation, exact for these years.

use jiff::civil::{Date, Weekday};

fn nth_monday(year: i16, month: i8, n: i8) -> Option<Date> {
    let first = Date::new(year, month, 1).ok()?;
    let offset = (7 + 1 - first.weekday().to_monday_one_offset()) % 7; // days to Monday
    Date::new(year, month, 1 + offset + (n - 1) * 7).ok()
}

fn equinox_day(year: i16, base: f64) -> i8 {
    let y = f64::from(year - 1980);
    (base + 0.242194 * y - (y / 4.0).floor()).floor() as i8
}

/// The named national holidays of a year (before substitutes and citizens' holidays).
fn named_holidays(year: i16) -> Vec<Date> {
    let d = |m: i8, day: i8| Date::new(year, m, day).ok();
    let mut v = vec![
        d(1, 1),
        nth_monday(year, 1, 2),
        d(2, 11),
        d(3, equinox_day(year, 20.8431)),
        d(4, 29),
        d(5, 3),
        d(5, 4),
        d(5, 5),
        nth_monday(year, 7, 3),
        d(8, 11),
        nth_monday(year, 9, 3),
        d(9, equinox_day(year, 23.2488)),
        nth_monday(year, 10, 2),
        d(11, 3),
        d(11, 23),
    ];
    if year >= 2020 {
        v.push(d(2, 23)); // the Emperor's Birthday since 2020
    }
    v.into_iter().flatten().collect()
}

/// Every national holiday of a year, substitutes and citizens' holidays included.
pub fn jp_holidays(year: i16) -> Vec<Date> {
    let named = named_holidays(year);
    let mut all = named.clone();
    // 振替休日: a holiday on a Sunday moves to the next day that is not a holiday.
    for h in &named {
        if h.weekday() == Weekday::Sunday {
            let mut next = h.tomorrow().ok();
            while let Some(n) = next {
                if !named.contains(&n) {
                    all.push(n);
                    break;
                }
                next = n.tomorrow().ok();
            }
        }
    }
    // 国民の休日: a day between two holidays.
    for h in &named {
        if let (Ok(mid), Ok(after)) = (h.tomorrow(), h.tomorrow().and_then(|t| t.tomorrow())) {
            if named.contains(&after) && !all.contains(&mid) && mid.weekday() != Weekday::Sunday {
                all.push(mid);
            }
        }
    }
    all.sort();
    all.dedup();
    all
}

pub fn is_jp_holiday(d: Date) -> bool {
    jp_holidays(d.year()).contains(&d)
}

/// A weekday that is not a national holiday.
pub fn is_business_day(d: Date) -> bool {
    !matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday) && !is_jp_holiday(d)
}

/// Business days strictly between two dates (neither end counted).
pub fn business_days_between(from: Date, to: Date) -> i64 {
    let mut n = 0;
    let mut d = from.tomorrow().ok();
    while let Some(x) = d {
        if x >= to {
            break;
        }
        if is_business_day(x) {
            n += 1;
        }
        d = x.tomorrow().ok();
    }
    n
}

/// The same time of day on the next business day after `t`, in `zone` (the deadline of
/// "within one business day").
pub fn next_business_day(t: crate::Timestamp, zone: &str) -> Option<crate::Timestamp> {
    let local = t.to_rfc3339_in_zone(zone);
    let time = local.get(11..19)?;
    let mut d: Date = t.day_in_zone(zone).parse().ok()?;
    loop {
        d = d.tomorrow().ok()?;
        if is_business_day(d) {
            break;
        }
    }
    crate::Timestamp::parse_in_zone(&format!("{d}T{time}"), zone)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> Date {
        s.parse().unwrap()
    }

    #[test]
    fn holidays_of_2026() {
        let got: Vec<String> = jp_holidays(2026).iter().map(|d| d.to_string()).collect();
        let want = [
            "2026-01-01",
            "2026-01-12",
            "2026-02-11",
            "2026-02-23",
            "2026-03-20",
            "2026-04-29",
            "2026-05-03",
            "2026-05-04",
            "2026-05-05",
            "2026-05-06",
            "2026-07-20",
            "2026-08-11",
            "2026-09-21",
            "2026-09-22",
            "2026-09-23",
            "2026-10-12",
            "2026-11-03",
            "2026-11-23",
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn holidays_of_2025_and_equinoxes() {
        let got: Vec<String> = jp_holidays(2025).iter().map(|d| d.to_string()).collect();
        for want in [
            "2025-01-13",
            "2025-02-24",
            "2025-03-20",
            "2025-05-06",
            "2025-07-21",
            "2025-08-11",
            "2025-09-15",
            "2025-09-23",
            "2025-10-13",
            "2025-11-24",
        ] {
            assert!(got.contains(&want.to_string()), "{want} in {got:?}");
        }
        assert_eq!(equinox_day(2024, 20.8431), 20);
        assert_eq!(equinox_day(2024, 23.2488), 22);
    }

    #[test]
    fn next_business_day_skips_weekends_and_holidays() {
        let t = crate::Timestamp::parse_in_zone("2026-11-20T18:30", "Asia/Tokyo").unwrap();
        let n = next_business_day(t, "Asia/Tokyo").unwrap();
        // Friday → Saturday, Sunday, Monday 23rd (holiday) → Tuesday 24th, same time.
        assert_eq!(
            n.to_rfc3339_in_zone("Asia/Tokyo"),
            "2026-11-24T18:30:00.000+09:00"
        );
    }

    #[test]
    fn business_days() {
        assert!(is_business_day(date("2026-11-20")));
        assert!(!is_business_day(date("2026-11-21"))); // Saturday
        assert!(!is_business_day(date("2026-11-23"))); // 勤労感謝の日
                                                       // Mon 2026-11-16 → Mon 2026-11-23: Tue..Fri = 4 between.
        assert_eq!(
            business_days_between(date("2026-11-16"), date("2026-11-23")),
            4
        );
        // Around Golden Week 2026: Thu 04-30, Fri 05-01, then 05-07, 05-08.
        assert_eq!(
            business_days_between(date("2026-04-28"), date("2026-05-11")),
            4
        );
    }
}

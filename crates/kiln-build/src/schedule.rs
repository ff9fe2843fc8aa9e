//! Schedules: when the mutable inputs of a recipe (git refs) are checked again.
//!
//! A recipe's top-level `schedule` is one string, read in UTC:
//!
//! - a cron expression of five fields, `MINUTE HOUR DAY-OF-MONTH MONTH DAY-OF-WEEK`, each `*`,
//!   a number, a range `A-B`, a list `A,B-C`, or a step `*/N`, `A-B/N`, `A/N` (from A to the
//!   end). Months may be named `jan`…`dec`, days of the week `sun`…`sat` (0 and 7 are
//!   Sunday). As in Vixie cron, when both day fields are restricted (neither starts with
//!   `*`) a day matches if either does; otherwise both must;
//! - `@hourly`, `@daily` (`@midnight`), `@weekly`, `@monthly`, `@yearly` (`@annually`);
//! - `@every DURATION` (`30s`, `5m`, `2h`, `1d`; at least one second): at every multiple of
//!   the duration since the Unix epoch, so the times do not depend on when kiln started.
//!
//! A schedule is never part of an action key. [`Schedule::next_after`] is all a scheduler
//! needs: the first time strictly after a given one.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// When to check a recipe's mutable inputs again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    text: String,
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Every(Duration),
    Cron(Cron),
}

/// The sets of a cron expression, as bit masks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cron {
    minutes: u64,
    hours: u32,
    /// Bits 1..=31.
    days: u32,
    /// Bits 1..=12.
    months: u16,
    /// Bits 0..=6 (Sunday is 0).
    weekdays: u8,
    /// The day-of-month field starts with `*`.
    days_star: bool,
    /// The day-of-week field starts with `*`.
    weekdays_star: bool,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// How far [`Schedule::next_after`] looks ahead: 400 years is a whole Gregorian cycle.
const HORIZON_DAYS: i64 = 146_097;

impl Schedule {
    /// Parse a schedule (see the module documentation). The error is one line.
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let t = text.trim();
        let kind = if let Some(d) = t.strip_prefix("@every") {
            let d = d.trim();
            let every = parse_every(d).ok_or_else(|| {
                format!("bad duration {d:?} after @every (expected e.g. 30s, 5m, 2h, 1d)")
            })?;
            if every < Duration::from_secs(1) {
                return Err(format!("@every {d}: the shortest interval is 1s"));
            }
            Kind::Every(every)
        } else if t.starts_with('@') {
            let cron = match t {
                "@yearly" | "@annually" => "0 0 1 1 *",
                "@monthly" => "0 0 1 * *",
                "@weekly" => "0 0 * * 0",
                "@daily" | "@midnight" => "0 0 * * *",
                "@hourly" => "0 * * * *",
                _ => {
                    return Err(format!(
                        "unknown shortcut {t:?} (known: @every DURATION, @hourly, @daily, @weekly, @monthly, @yearly)"
                    ));
                }
            };
            Kind::Cron(Cron::parse(cron)?)
        } else {
            Kind::Cron(Cron::parse(t)?)
        };
        Ok(Schedule {
            text: t.to_string(),
            kind,
        })
    }

    /// The schedule as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first scheduled time strictly after `t` (cron times fall on whole minutes, UTC).
    /// `None` only if nothing matches within 400 years (a cron expression that can never
    /// match is refused by [`Schedule::parse`], so in practice never).
    pub fn next_after(&self, t: SystemTime) -> Option<SystemTime> {
        match &self.kind {
            Kind::Every(d) => {
                let step = d.as_millis().max(1);
                let now = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
                let next = (now / step + 1).checked_mul(step)?;
                let secs = u64::try_from(next / 1000).ok()?;
                let millis = u64::try_from(next % 1000).ok()?;
                UNIX_EPOCH.checked_add(Duration::from_secs(secs) + Duration::from_millis(millis))
            }
            Kind::Cron(c) => {
                let secs = t
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2));
                let next = c.next_minute_after(secs)?;
                UNIX_EPOCH.checked_add(Duration::from_secs(u64::try_from(next).ok()?))
            }
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for Schedule {
    type Err = String;

    fn from_str(s: &str) -> Result<Schedule, String> {
        Schedule::parse(s)
    }
}

/// `30s`, `5m`, `2h`, `1d`: whole seconds (milliseconds are not a schedule's unit).
fn parse_every(s: &str) -> Option<Duration> {
    if s.trim_end().ends_with("ms") {
        return None;
    }
    crate::recipe::parse_duration(s)
}

impl Cron {
    fn parse(text: &str) -> Result<Cron, String> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        let [min, hour, dom, month, dow] = fields[..] else {
            return Err(format!(
                "{text:?} has {} fields; a schedule is MINUTE HOUR DAY-OF-MONTH MONTH DAY-OF-WEEK (e.g. \"*/5 * * * *\"), @daily, or @every 5m",
                fields.len()
            ));
        };
        let minutes = field(min, "minute", 0, 59, &[])?;
        let hours = field(hour, "hour", 0, 23, &[])?;
        let days = field(dom, "day of month", 1, 31, &[])?;
        let months = field(month, "month", 1, 12, &MONTHS)?;
        // 7 is Sunday too.
        let dow_bits = field(dow, "day of week", 0, 7, &WEEKDAYS)?;
        let weekdays = ((dow_bits | (dow_bits >> 7)) & 0x7f) as u8;
        let cron = Cron {
            minutes,
            hours: hours as u32,
            days: days as u32,
            months: months as u16,
            weekdays,
            days_star: dom.starts_with('*'),
            weekdays_star: dow.starts_with('*'),
        };
        // A day of month that no chosen month has (`30 2`) would never come, unless the day
        // of week gives other days.
        if !cron.weekdays_star || cron.days_star {
            return Ok(cron);
        }
        let possible = (1..=12u32).any(|m| {
            cron.months & (1 << m) != 0
                && (1..=month_days_max(m)).any(|d| cron.days & (1 << d) != 0)
        });
        if !possible {
            return Err(format!(
                "{text:?} never matches: no chosen month has the chosen days"
            ));
        }
        Ok(cron)
    }

    fn day_matches(&self, day: u32, weekday: u32) -> bool {
        let by_day = self.days & (1 << day) != 0;
        let by_weekday = self.weekdays & (1 << weekday) != 0;
        if self.days_star || self.weekdays_star {
            by_day && by_weekday
        } else {
            by_day || by_weekday
        }
    }

    /// The first matching minute (as Unix seconds) strictly after `secs`.
    fn next_minute_after(&self, secs: i64) -> Option<i64> {
        let start = secs.div_euclid(60) + 1;
        let first_day = start.div_euclid(1440);
        let first_minute = start.rem_euclid(1440);
        for day in first_day..first_day + HORIZON_DAYS {
            let (_, month, dom) = civil_from_days(day);
            let weekday = (day + 4).rem_euclid(7) as u32;
            if self.months & (1 << month) == 0 || !self.day_matches(dom, weekday) {
                continue;
            }
            let from = if day == first_day { first_minute } else { 0 };
            let hit = (from..1440)
                .find(|m| self.hours & (1 << (m / 60)) != 0 && self.minutes & (1 << (m % 60)) != 0);
            if let Some(m) = hit {
                return Some((day * 1440 + m) * 60);
            }
        }
        None
    }
}

fn month_days_max(m: u32) -> u32 {
    match m {
        2 => 29,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// One cron field as a bit mask of the values `lo..=hi` it selects.
fn field(text: &str, what: &str, lo: u32, hi: u32, names: &[&str]) -> Result<u64, String> {
    let bad = |why: String| format!("{what} field {text:?}: {why}");
    let value = |s: &str| -> Result<u32, String> {
        let v = match s.parse::<u32>() {
            Ok(v) => v,
            Err(_) => {
                let lower = s.to_ascii_lowercase();
                let i = names
                    .iter()
                    .position(|n| *n == lower)
                    .ok_or_else(|| bad(format!("{s:?} is not a number")))?;
                // Month names count from 1, weekday names from 0.
                i as u32 + lo
            }
        };
        if v < lo || v > hi {
            return Err(bad(format!("{v} is out of range {lo}-{hi}")));
        }
        Ok(v)
    };
    let mut mask = 0u64;
    for item in text.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| bad(format!("bad step {s:?}")))?;
                (r, Some(step))
            }
            None => (item, None),
        };
        let (a, b) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (value(a)?, value(b)?);
            if a > b {
                return Err(bad(format!("range {range:?} goes backwards")));
            }
            (a, b)
        } else {
            let a = value(range)?;
            // `A/N` runs from A to the end; a plain `A` is just A.
            (a, if step.is_some() { hi } else { a })
        };
        let mut v = a;
        while v <= b {
            mask |= 1 << v;
            v += step.unwrap_or(1);
        }
    }
    Ok(mask)
}

/// Year, month (1..=12) and day (1..=31) of a day counted from 1970-01-01 (proleptic
/// Gregorian calendar; Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A time as `YYYY-MM-DD HH:MM:SS UTC`, for messages.
pub fn format_utc(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// A UTC time `YYYY-MM-DD[(T| )HH:MM[:SS]][Z| UTC]`.
pub fn parse_utc(s: &str) -> Option<SystemTime> {
    let s = s
        .strip_suffix(" UTC")
        .or_else(|| s.strip_suffix('Z'))
        .unwrap_or(s);
    let (date, time) = match s.find(['T', ' ']) {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, ""),
    };
    let mut d = date.split('-');
    let y: i64 = d.next()?.parse().ok()?;
    let m: u32 = d.next()?.parse().ok()?;
    let day: u32 = d.next()?.parse().ok()?;
    if d.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    let mut secs = 0u64;
    if !time.is_empty() {
        let parts: Vec<&str> = time.split(':').collect();
        if !(2..=3).contains(&parts.len()) {
            return None;
        }
        let h: u64 = parts[0].parse().ok()?;
        let mi: u64 = parts[1].parse().ok()?;
        let sec: u64 = parts.get(2).map_or(Some(0), |p| p.parse().ok())?;
        if h > 23 || mi > 59 || sec > 60 {
            return None;
        }
        secs = h * 3600 + mi * 60 + sec;
    }
    let days = u64::try_from(days_from_civil(y, m, day)).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(days * 86_400 + secs))
}

/// Days from 1970-01-01 to a civil date (proleptic Gregorian; Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A UTC date and time (days from the civil date: Howard Hinnant's inverse).
    fn at(y: i64, mo: u32, d: u32, h: u64, mi: u64) -> SystemTime {
        let days = days_from_civil(y, mo, d);
        assert_eq!(civil_from_days(days).1, mo);
        UNIX_EPOCH + Duration::from_secs(days as u64 * 86_400 + h * 3600 + mi * 60)
    }

    fn next(s: &str, t: SystemTime) -> String {
        format_utc(Schedule::parse(s).unwrap().next_after(t).unwrap())
    }

    #[test]
    fn calendar() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(
            format_utc(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
            "2023-11-14 22:13:20 UTC"
        );
        assert_eq!(
            format_utc(at(2024, 2, 29, 23, 59)),
            "2024-02-29 23:59:00 UTC"
        );
    }

    #[test]
    fn cron_next_times() {
        let t = at(2024, 5, 17, 10, 3) + Duration::from_secs(20); // a Friday
        assert_eq!(next("*/5 * * * *", t), "2024-05-17 10:05:00 UTC");
        assert_eq!(next("* * * * *", t), "2024-05-17 10:04:00 UTC");
        // Strictly after: exactly on a scheduled minute gives the next one.
        assert_eq!(
            next("*/5 * * * *", at(2024, 5, 17, 10, 5)),
            "2024-05-17 10:10:00 UTC"
        );
        assert_eq!(next("0 * * * *", t), "2024-05-17 11:00:00 UTC");
        assert_eq!(next("30 2 * * *", t), "2024-05-18 02:30:00 UTC");
        assert_eq!(next("0 9-17/4 * * *", t), "2024-05-17 13:00:00 UTC");
        assert_eq!(next("15,45 8,20 * * *", t), "2024-05-17 20:15:00 UTC");
        assert_eq!(next("0 0 1 * *", t), "2024-06-01 00:00:00 UTC");
        assert_eq!(next("0 0 1 jan *", t), "2025-01-01 00:00:00 UTC");
        assert_eq!(next("0 12 * * mon", t), "2024-05-20 12:00:00 UTC");
        assert_eq!(next("0 12 * * 1-5", t), "2024-05-17 12:00:00 UTC");
        assert_eq!(next("0 12 * * sat,sun", t), "2024-05-18 12:00:00 UTC");
        // 7 is Sunday, like 0.
        assert_eq!(next("0 12 * * 7", t), "2024-05-19 12:00:00 UTC");
        // Both day fields restricted: either matches (the 20th, or any Sunday).
        assert_eq!(next("0 0 20 * 0", t), "2024-05-19 00:00:00 UTC");
        // One of them starred (even as */N): both must match.
        assert_eq!(next("0 0 */1 * 0", t), "2024-05-19 00:00:00 UTC");
        // (So "Friday the 13th" is not expressible: this is the 13th or any Friday.)
        assert_eq!(next("0 0 13 * fri", t), "2024-05-24 00:00:00 UTC");
        // Leap days come every four years (or eight, around 2100).
        assert_eq!(next("0 0 29 2 *", t), "2028-02-29 00:00:00 UTC");
        assert_eq!(
            next("0 0 29 feb *", at(2096, 3, 1, 0, 0)),
            "2104-02-29 00:00:00 UTC"
        );
        // Across the year's end.
        assert_eq!(
            next("59 23 31 12 *", at(2024, 12, 31, 23, 59)),
            "2025-12-31 23:59:00 UTC"
        );
        assert_eq!(next("5/20 * * * *", t), "2024-05-17 10:05:00 UTC");
        assert_eq!(next("@hourly", t), "2024-05-17 11:00:00 UTC");
        assert_eq!(next("@daily", t), "2024-05-18 00:00:00 UTC");
        assert_eq!(next("@weekly", t), "2024-05-19 00:00:00 UTC");
        assert_eq!(next("@monthly", t), "2024-06-01 00:00:00 UTC");
        assert_eq!(next("@yearly", t), "2025-01-01 00:00:00 UTC");
    }

    #[test]
    fn every() {
        let t = at(2024, 5, 17, 10, 3) + Duration::from_millis(20_250);
        assert_eq!(next("@every 1s", t), "2024-05-17 10:03:21 UTC");
        assert_eq!(next("@every 30s", t), "2024-05-17 10:03:30 UTC");
        assert_eq!(next("@every 5m", t), "2024-05-17 10:05:00 UTC");
        assert_eq!(next("@every 1d", t), "2024-05-18 00:00:00 UTC");
        let s = Schedule::parse("@every 2s").unwrap();
        let a = s.next_after(t).unwrap();
        assert_eq!(s.next_after(a).unwrap(), a + Duration::from_secs(2));
        assert_eq!(s.to_string(), "@every 2s");
    }

    #[test]
    fn bad_schedules() {
        for (s, why) in [
            ("* * * *", "has 4 fields"),
            ("60 * * * *", "minute field \"60\": 60 is out of range 0-59"),
            ("* 24 * * *", "out of range 0-23"),
            ("* * 0 * *", "out of range 1-31"),
            ("* * * 13 *", "out of range 1-12"),
            ("* * * * 8", "out of range 0-7"),
            ("*/0 * * * *", "bad step \"0\""),
            ("5-1 * * * *", "goes backwards"),
            ("x * * * *", "\"x\" is not a number"),
            ("* * * foo *", "\"foo\" is not a number"),
            ("0 0 30 2 *", "never matches"),
            ("0 0 31 4,6 *", "never matches"),
            ("@sometimes", "unknown shortcut"),
            ("@every", "bad duration"),
            ("@every 5", "bad duration"),
            ("@every 0s", "the shortest interval is 1s"),
            ("", "has 0 fields"),
        ] {
            let e = Schedule::parse(s).unwrap_err();
            assert!(e.contains(why), "{s:?}: {e}");
            assert!(!e.contains('\n'));
        }
        // Feb 30 with a weekday too: the weekday gives days, so it is allowed.
        assert!(Schedule::parse("0 0 30 2 mon").is_ok());
        assert!(Schedule::parse("0 0 31 2,3 *").is_ok());
    }
}

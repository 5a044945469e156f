//! `[daemon]`: when `lastseen daemon` runs (a cron schedule in a time zone), where it serves
//! `/healthz` and `/metrics`, how many missed days it catches up, and how long a shutdown waits.
//!
//! The schedule's fire times are computed here, in the configured IANA zone, instead of by the
//! scheduler: tokio-cron-scheduler fixes a zone's UTC offset when a job is created, so its
//! local-time jobs drift by an hour after each daylight-saving change.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// Validated `[daemon]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonConfig {
    pub schedule: Schedule,
    /// Address of the `/healthz` and `/metrics` server (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Missed days caught up on start, counted back from today (0 turns catch-up off).
    pub catch_up_days: u32,
    /// On SIGTERM/Ctrl-C, how long a run in progress may take to finish before it is abandoned.
    pub shutdown_grace: Duration,
}

/// A cron schedule in a time zone: the classic 5 fields (minute hour day-of-month month
/// day-of-week, seconds = 0) or 6 fields with seconds first. Day-of-month and day-of-week are
/// ORed when both are restricted, as in system cron.
#[derive(Clone)]
pub struct Schedule {
    text: String,
    cron: Cron,
    tz: Tz,
}

impl Schedule {
    /// Parses `text` (5 or 6 fields) for zone `tz`; the error says what is wrong with the text.
    pub fn parse(text: &str, tz: Tz) -> Result<Schedule, String> {
        let fields = text.split_whitespace().count();
        if fields != 5 && fields != 6 {
            return Err(format!(
                "`{text}` has {fields} fields; write 5 (minute hour day-of-month month day-of-week, \
                 e.g. \"30 0 * * *\") or 6 with seconds first (e.g. \"*/5 * * * * *\")"
            ));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build()
            .parse(text)
            .map_err(|e| format!("`{text}` is not a cron schedule: {e}"))?;
        let schedule = Schedule { text: text.trim().to_owned(), cron, tz };
        // A pattern such as "0 0 31 2 *" parses but never fires: say so now rather than idle.
        if schedule.next_after(Utc::now()).is_none() {
            return Err(format!("`{text}` never fires (no such date)"));
        }
        Ok(schedule)
    }

    /// The schedule as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// The first fire time strictly after `t`. In the hour a DST change skips, a fixed-time
    /// schedule fires at the first valid time after the gap; in the hour it repeats, once.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = self.tz.from_utc_datetime(&t.naive_utc());
        self.cron.find_next_occurrence(&local, false).ok().map(|d| d.with_timezone(&Utc))
    }

    /// The last fire time at or before `t`.
    pub fn latest_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = self.tz.from_utc_datetime(&t.naive_utc());
        self.cron.find_previous_occurrence(&local, true).ok().map(|d| d.with_timezone(&Utc))
    }
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text && self.tz == other.tz
    }
}

impl Eq for Schedule {}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Schedule({:?} in {})", self.text, self.tz.name())
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\" ({})", self.text, self.tz.name())
    }
}

/// An IANA zone name such as `UTC`, `Europe/Berlin` or `America/New_York`.
pub fn parse_timezone(name: &str) -> Result<Tz, String> {
    name.trim().parse::<Tz>().map_err(|_| {
        format!("`{name}` is not an IANA time zone; write e.g. \"UTC\", \"Europe/Berlin\" or \"America/New_York\"")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn fires(s: &Schedule, from: &str, n: usize) -> Vec<String> {
        let mut t = utc(from);
        let mut out = Vec::new();
        for _ in 0..n {
            t = s.next_after(t).unwrap();
            out.push(t.to_rfc3339());
        }
        out
    }

    #[test]
    fn five_fields_fire_on_the_minute_in_utc() {
        let s = Schedule::parse("30 0 * * *", Tz::UTC).unwrap();
        assert_eq!(fires(&s, "2026-06-29T12:00:00Z", 2), ["2026-06-30T00:30:00+00:00", "2026-07-01T00:30:00+00:00"]);
        assert_eq!(s.latest_at_or_before(utc("2026-06-30T00:30:00Z")), Some(utc("2026-06-30T00:30:00Z")));
        assert_eq!(s.latest_at_or_before(utc("2026-06-30T00:29:59Z")), Some(utc("2026-06-29T00:30:00Z")));
    }

    #[test]
    fn six_fields_have_seconds_first() {
        let s = Schedule::parse("*/5 * * * * *", Tz::UTC).unwrap();
        assert_eq!(
            fires(&s, "2026-06-29T12:00:01Z", 3),
            ["2026-06-29T12:00:05+00:00", "2026-06-29T12:00:10+00:00", "2026-06-29T12:00:15+00:00"]
        );
    }

    #[test]
    fn day_of_month_and_day_of_week_are_ored_like_system_cron() {
        // The 1st of the month or any Monday. 2026-06-01 is a Monday; June 8 the next Monday.
        let s = Schedule::parse("0 6 1 * MON", Tz::UTC).unwrap();
        assert_eq!(
            fires(&s, "2026-05-30T00:00:00Z", 3),
            ["2026-06-01T06:00:00+00:00", "2026-06-08T06:00:00+00:00", "2026-06-15T06:00:00+00:00"]
        );
    }

    #[test]
    fn local_time_is_kept_across_the_spring_forward() {
        // Europe/Berlin moves from UTC+1 to UTC+2 at 2026-03-29 01:00 UTC.
        let s = Schedule::parse("30 0 * * *", chrono_tz::Europe::Berlin).unwrap();
        assert_eq!(
            fires(&s, "2026-03-27T12:00:00Z", 3),
            ["2026-03-27T23:30:00+00:00", "2026-03-28T23:30:00+00:00", "2026-03-29T22:30:00+00:00"]
        );
    }

    #[test]
    fn local_time_is_kept_across_the_fall_back() {
        // America/New_York moves from UTC-4 to UTC-5 at 2026-11-01 06:00 UTC.
        let s = Schedule::parse("0 9 * * *", chrono_tz::America::New_York).unwrap();
        assert_eq!(
            fires(&s, "2026-10-30T00:00:00Z", 3),
            ["2026-10-30T13:00:00+00:00", "2026-10-31T13:00:00+00:00", "2026-11-01T14:00:00+00:00"]
        );
    }

    #[test]
    fn a_time_inside_the_skipped_hour_fires_once_just_after_it() {
        // 02:30 does not exist in New York on 2026-03-08 (02:00 EST jumps to 03:00 EDT): that
        // day's run is at 03:00 EDT, the next days' at 02:30 EDT.
        let s = Schedule::parse("30 2 * * *", chrono_tz::America::New_York).unwrap();
        assert_eq!(
            fires(&s, "2026-03-07T12:00:00Z", 3),
            ["2026-03-08T07:00:00+00:00", "2026-03-09T06:30:00+00:00", "2026-03-10T06:30:00+00:00"]
        );
    }

    #[test]
    fn a_time_inside_the_repeated_hour_fires_once() {
        // 01:30 happens twice in New York on 2026-11-01 (EDT, then EST): one run, at the first.
        let s = Schedule::parse("30 1 * * *", chrono_tz::America::New_York).unwrap();
        assert_eq!(
            fires(&s, "2026-10-31T12:00:00Z", 3),
            ["2026-11-01T05:30:00+00:00", "2026-11-02T06:30:00+00:00", "2026-11-03T06:30:00+00:00"]
        );
    }

    #[test]
    fn the_daemon_listens_on_loopback_unless_told_otherwise() {
        // /healthz and /metrics have no auth: every interface is a deliberate setting.
        let c = crate::Config::from_toml_str("", "t", Vec::<(String, String)>::new()).unwrap();
        assert!(c.daemon.listen.ip().is_loopback(), "{}", c.daemon.listen);
        let c =
            crate::Config::from_toml_str("[daemon]\nlisten = \"0.0.0.0:8080\"\n", "t", Vec::<(String, String)>::new())
                .unwrap();
        assert!(c.daemon.listen.ip().is_unspecified());
    }

    #[test]
    fn bad_schedules_say_why() {
        for (text, needle) in [
            ("30 0 * *", "4 fields"),
            ("0 0 0 * * * 2027", "7 fields"),
            ("61 0 * * *", "not a cron schedule"),
            ("0 0 31 2 *", "never fires"),
        ] {
            let err = Schedule::parse(text, Tz::UTC).unwrap_err();
            assert!(err.contains(needle), "{text}: {err}");
        }
        assert!(parse_timezone("Mars/Olympus").unwrap_err().contains("IANA"));
        assert_eq!(parse_timezone("Europe/Berlin").unwrap(), chrono_tz::Europe::Berlin);
    }
}

//! Who accessed Slack when, from which client: derived purely from (seed, account, day), so the
//! access-log endpoint and the ground truth agree exactly and nothing is stored per event.

use std::cmp::Ordering;

use crate::names::{BROWSER_AGENTS, DESKTOP_AGENTS, HOME_ISPS, MOBILE_AGENTS, MOBILE_ISPS, OFFICE_ISPS, ZONES};
use crate::org::{Org, Profile, UserRec};
use crate::rng::{below, day_hash, mix, mix4, unit};

const DAY: i64 = 86_400;

/// How many days `billing_active` trails real activity.
pub(crate) const BILLING_LAG_DAYS: i32 = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Client {
    Desktop = 0,
    Mobile = 1,
    Browser = 2,
}

const ROTATION: [Client; 3] = [Client::Desktop, Client::Mobile, Client::Browser];

/// One access event.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Access {
    pub client: Client,
    /// Networks change over time (a phone's carrier address, a home router); each variant is a
    /// separate (ip, user agent) combination and so a separate access-log entry.
    pub variant: u16,
    pub at: i64,
}

/// Every account's entries at one clock value, grouped by account in listing order.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub now: i64,
    pub by_user: Vec<Entry>,
}

/// One `team.accessLogs` entry: a (user, ip, user agent) combination aggregated up to the clock.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry {
    pub user: u32,
    pub client: Client,
    pub variant: u16,
    pub date_first: i64,
    pub date_last: i64,
    pub count: u32,
}

// Per-day tags for `day_hash`, each purpose in its own range.
const D_ACTIVE: u64 = 0x1;
const D_SLOT: u64 = 0x10;
const D_ACCESSES: u64 = 0x20;
const D_TIME: u64 = 0x100;
const D_PHASE: u64 = 0x400;
const T_REMOTE: u64 = 105;
const T_OFFICE: u64 = 106;
const T_HOME: u64 = 107;
const T_V6: u64 = 108;
const T_MOBILE: u64 = 109;
const T_AGENT: u64 = 110;
const T_GEO: u64 = 111;
const T_ISP: u64 = 112;

fn floor_div(a: i64, b: i64) -> i64 {
    a.div_euclid(b)
}

impl Org {
    fn active_on(&self, u: &UserRec, day: i32) -> bool {
        if day < u.lo || day > u.hi {
            return false;
        }
        if u.force_hi && day == u.hi {
            return true;
        }
        let weekend = (self.start_weekday() + day as u32) % 7 >= 5;
        let p = match u.profile {
            Profile::Daily if weekend => 0.5,
            Profile::Daily => 0.93,
            Profile::Occasional => 0.15,
            Profile::Dormant => 0.6,
            Profile::Never => 0.0,
        };
        unit(day_hash(u.key, day, D_ACTIVE)) < p
    }

    fn variant(u: &UserRec, client: Client, day: i32) -> u16 {
        let phase = below(day_hash(u.key, 0, D_PHASE), 180) as i32;
        let v = match client {
            Client::Desktop => 0,
            Client::Mobile => (day + phase) / 90,
            Client::Browser => (day + phase) / 180,
        };
        v.clamp(0, i32::from(u16::MAX)) as u16
    }

    /// Every access the account made on day index `day`, appended to `out` (unsorted).
    pub(crate) fn day_accesses(&self, pos: usize, day: i32, out: &mut Vec<Access>) {
        let first = out.len();
        self.model_accesses(pos, day, out);
        // A SCIM deactivation ends every session; nothing is accessed until a re-activation.
        let mut i = first;
        while i < out.len() {
            if self.active_at(pos, out[i].at) {
                i += 1
            } else {
                out.swap_remove(i);
            }
        }
    }

    fn model_accesses(&self, pos: usize, day: i32, out: &mut Vec<Access>) {
        let u = self.user(pos);
        if !self.active_on(u, day) {
            return;
        }
        let day_start = self.start_epoch() + i64::from(day) * DAY;
        let offset = ZONES[usize::from(u.zone)].offset;
        for slot in 0..u64::from(u.clients) {
            let used = slot == 0 || unit(day_hash(u.key, day, D_SLOT + slot)) < 0.45;
            if !used {
                continue;
            }
            let client = ROTATION[((u64::from(u.first_client) + slot) % 3) as usize];
            let accesses = match u.profile {
                Profile::Daily => 1 + below(day_hash(u.key, day, D_ACCESSES + slot), 3),
                _ => 1,
            };
            let variant = Self::variant(u, client, day);
            for j in 0..accesses {
                // Working hours in the person's own time zone, folded back into the UTC day so
                // an access always belongs to the day that produced it.
                let local = 7 * 3600 + below(day_hash(u.key, day, D_TIME + slot * 16 + j), 12 * 3600) as i64;
                let at = day_start + (local - offset).rem_euclid(DAY);
                out.push(Access { client, variant, at });
            }
        }
    }

    /// Billable under Fair Billing on day index `day`: a seat that was active in the 14 days
    /// Slack's periodic computation had seen, which lags activity by `BILLING_LAG_DAYS`.
    pub(crate) fn billable_on(&self, pos: usize, day: i32) -> bool {
        let u = self.user(pos);
        if !u.kind.is_human() || u.kind == crate::org::Kind::GuestSingle {
            return false;
        }
        if self.deleted_day(pos).is_some_and(|d| d <= day) {
            return false;
        }
        let seen = day - BILLING_LAG_DAYS;
        (seen - 13..=seen).any(|d| self.active_on(u, d))
    }

    /// The accounts with at least one access on UTC day `day`: the daily active accounts of the
    /// simulator's own activity model (what a usage report's DAU must equal).
    pub fn active_accounts(&self, day: chrono::NaiveDate) -> std::collections::BTreeSet<String> {
        let Some(d) = self.day_index(day) else { return Default::default() };
        let mut buf = Vec::new();
        (0..self.len())
            .filter(|&pos| {
                buf.clear();
                self.day_accesses(pos, d, &mut buf);
                !buf.is_empty()
            })
            .map(|pos| self.user(pos).id.to_string())
            .collect()
    }

    /// The accounts `team.billableInfo` lists as billed on UTC day `day` (paid plans; none on
    /// Free). Accounts it leaves out of its map are not billed as far as a reader can tell.
    pub fn billable_accounts(&self, day: chrono::NaiveDate) -> std::collections::BTreeSet<String> {
        let Some(d) = self.day_index(day) else { return Default::default() };
        if !self.spec().plan.is_paid() {
            return Default::default();
        }
        (0..self.len())
            .filter(|&pos| crate::endpoints::billing::listed(self, pos) && self.billable_on(pos, d))
            .map(|pos| self.user(pos).id.to_string())
            .collect()
    }

    /// The day index of a calendar day, if it is within `i32`.
    fn day_index(&self, day: chrono::NaiveDate) -> Option<i32> {
        let start = day.and_hms_opt(0, 0, 0)?.and_utc().timestamp();
        i32::try_from(self.day_of(start)).ok()
    }

    pub(crate) fn day_of(&self, at: i64) -> i64 {
        floor_div(at - self.start_epoch(), DAY)
    }

    /// The account's latest access at or before `at` (epoch seconds).
    pub(crate) fn last_access(&self, pos: usize, at: i64) -> Option<i64> {
        let u = self.user(pos);
        let top = i64::from(u.hi).min(self.day_of(at));
        let mut buf = Vec::new();
        let mut day = top;
        while day >= i64::from(u.lo) {
            buf.clear();
            self.day_accesses(pos, day as i32, &mut buf);
            if let Some(t) = buf.iter().map(|a| a.at).filter(|&t| t <= at).max() {
                return Some(t);
            }
            day -= 1;
        }
        None
    }

    /// Merges the account's accesses in `(after, upto]` into `out[first..]`, which holds that
    /// account's entries so far.
    fn accumulate(&self, pos: usize, after: i64, upto: i64, first: usize, out: &mut Vec<Entry>) {
        let u = self.user(pos);
        let lo = i64::from(u.lo).max(self.day_of(after));
        let hi = i64::from(u.hi).min(self.day_of(upto));
        let mut buf = Vec::new();
        for day in lo..=hi {
            buf.clear();
            self.day_accesses(pos, day as i32, &mut buf);
            for a in buf.iter().filter(|a| a.at > after && a.at <= upto) {
                let found = out[first..].iter_mut().find(|e| e.client == a.client && e.variant == a.variant);
                match found {
                    Some(e) => {
                        e.date_first = e.date_first.min(a.at);
                        e.date_last = e.date_last.max(a.at);
                        e.count += 1;
                    }
                    None => out.push(Entry {
                        user: pos as u32,
                        client: a.client,
                        variant: a.variant,
                        date_first: a.at,
                        date_last: a.at,
                        count: 1,
                    }),
                }
            }
        }
    }

    /// Every account's access-log entries as of `now`, grouped by account in listing order.
    /// Given an earlier tally, only the accesses since then are derived: a clock that walks
    /// forward a day at a time costs O(accounts) per step instead of O(accounts × history).
    /// The work is spread over the machine's cores.
    pub(crate) fn tally(&self, base: Option<&Tally>, now: i64) -> Tally {
        let base = base.filter(|b| b.now <= now);
        let after = base.map_or(self.start_epoch() - 1, |b| b.now);
        let old: &[Entry] = base.map_or(&[], |b| &b.by_user);
        let n = self.len();
        let threads = std::thread::available_parallelism().map_or(1, |p| p.get()).clamp(1, 8);
        let chunk = n.div_ceil(threads).max(1);
        let by_user = std::thread::scope(|s| {
            let handles: Vec<_> = (0..n)
                .step_by(chunk)
                .map(|start| {
                    s.spawn(move || {
                        let mut out = Vec::new();
                        let mut i = old.partition_point(|e| (e.user as usize) < start);
                        for pos in start..(start + chunk).min(n) {
                            let first = out.len();
                            while i < old.len() && old[i].user as usize == pos {
                                out.push(old[i]);
                                i += 1;
                            }
                            self.accumulate(pos, after, now, first, &mut out);
                        }
                        out
                    })
                })
                .collect();
            handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
        });
        Tally { now, by_user }
    }

    /// The entries as `team.accessLogs` lists them: newest `date_last` first, ties broken by user
    /// id, ip and user agent (a total order, since each such triple is one entry).
    pub(crate) fn sorted_entries(&self, tally: &Tally) -> Vec<Entry> {
        let mut entries = tally.by_user.clone();
        entries.sort_by(|a, b| self.compare_entries(a, b));
        entries
    }

    #[cfg(test)]
    pub(crate) fn access_entries(&self, now: i64) -> Vec<Entry> {
        self.sorted_entries(&self.tally(None, now))
    }

    fn compare_entries(&self, a: &Entry, b: &Entry) -> Ordering {
        b.date_last
            .cmp(&a.date_last)
            .then_with(|| self.user(a.user as usize).id.cmp(&self.user(b.user as usize).id))
            .then_with(|| self.entry_ip(a).cmp(&self.entry_ip(b)))
            .then_with(|| self.entry_agent(a).cmp(self.entry_agent(b)))
    }

    /// Distinct variants of one person always get distinct addresses, so an (ip, user agent)
    /// combination never splits into two entries.
    fn home_ip(&self, pos: usize, variant: u16) -> String {
        let seed = self.seed();
        let h = mix(seed, pos as u64, T_HOME);
        let v = u64::from(variant);
        if unit(mix(seed, pos as u64, T_V6)) < 0.2 {
            format!("2001:db8:{:x}:{:x}::{:x}", h & 0xffff, (h >> 16) & 0xffff, 1 + ((h >> 32) & 0xfff) + v)
        } else {
            format!("198.51.100.{}", 1 + (below(h, 254) + v) % 254)
        }
    }

    fn works_remotely(&self, pos: usize) -> bool {
        unit(mix(self.seed(), pos as u64, T_REMOTE)) < 0.3
    }

    pub(crate) fn entry_ip(&self, e: &Entry) -> String {
        let pos = e.user as usize;
        match e.client {
            Client::Desktop if self.works_remotely(pos) => self.home_ip(pos, 0),
            Client::Desktop => {
                // Everyone in one office shares its two egress addresses.
                let zone = u64::from(self.user(pos).zone);
                format!("203.0.113.{}", zone * 16 + 1 + below(mix(self.seed(), pos as u64, T_OFFICE), 2))
            }
            Client::Browser => self.home_ip(pos, e.variant),
            Client::Mobile => {
                let h = mix(self.seed(), pos as u64, T_MOBILE);
                format!(
                    "100.{}.{}.{}",
                    64 + below(h, 64),
                    (below(h >> 8, 256) + u64::from(e.variant)) % 256,
                    1 + below(h >> 16, 254)
                )
            }
        }
    }

    pub(crate) fn entry_agent(&self, e: &Entry) -> &'static str {
        let h = mix(self.seed(), e.user as u64, T_AGENT + e.client as u64);
        match e.client {
            Client::Desktop => DESKTOP_AGENTS[below(h, DESKTOP_AGENTS.len() as u64) as usize],
            Client::Mobile => MOBILE_AGENTS[below(h, MOBILE_AGENTS.len() as u64) as usize],
            Client::Browser => BROWSER_AGENTS[below(h, BROWSER_AGENTS.len() as u64) as usize],
        }
    }

    /// Slack's best guesses at (isp, country, region); each may be unknown (null).
    pub(crate) fn entry_geo(&self, e: &Entry) -> (Option<&'static str>, Option<&'static str>, Option<&'static str>) {
        let pos = e.user as usize;
        let h = mix4(self.seed(), pos as u64, e.client as u64 * 1000 + u64::from(e.variant), T_GEO);
        let zone = &ZONES[usize::from(self.user(pos).zone)];
        let isps: &[&'static str; 3] = match e.client {
            Client::Desktop if self.works_remotely(pos) => &HOME_ISPS,
            Client::Desktop => &OFFICE_ISPS,
            Client::Browser => &HOME_ISPS,
            Client::Mobile => &MOBILE_ISPS,
        };
        let isp_h = mix(self.seed(), pos as u64, T_ISP + e.client as u64);
        let isp = (below(h, 20) != 0).then(|| isps[below(isp_h, 3) as usize]);
        let known = below(h >> 8, 50) != 0;
        (isp, known.then_some(zone.country), known.then_some(zone.region))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::org::{OrgSpec, Plan};
    use chrono::NaiveDate;
    use std::collections::HashMap;

    fn org() -> Org {
        let today = NaiveDate::from_ymd_opt(2025, 6, 30).unwrap_or_default();
        Org::generate(&OrgSpec::new(9, 300, Plan::Pro, today, 120))
    }

    #[test]
    fn entries_agree_with_ground_truth() {
        let org = org();
        let end = org.start_epoch() + 121 * DAY - 1;
        for now in [end, end - 40 * DAY - 5 * 3600, org.start_epoch() + 10 * DAY + 12 * 3600] {
            let entries = org.access_entries(now);
            let mut max: HashMap<u32, i64> = HashMap::new();
            for e in &entries {
                assert!(e.date_first <= e.date_last && e.date_last <= now);
                assert!(e.count >= 1);
                let m = max.entry(e.user).or_insert(i64::MIN);
                *m = (*m).max(e.date_last);
            }
            for pos in 0..org.len() {
                assert_eq!(org.last_access(pos, now), max.get(&(pos as u32)).copied(), "pos {pos}");
            }
            assert!(entries.windows(2).all(|w| w[0].date_last >= w[1].date_last));
        }
    }

    #[test]
    fn walking_the_clock_forward_matches_a_fresh_tally() {
        let org = org();
        let mut tally = org.tally(None, org.start_epoch() + 3 * DAY);
        for now in [4, 4, 9, 30, 31, 90, 121].map(|d| org.start_epoch() + d * DAY - 3600) {
            tally = org.tally(Some(&tally), now);
            let fresh = org.tally(None, now);
            assert_eq!(tally.by_user.len(), fresh.by_user.len());
            assert_eq!(format!("{:?}", org.sorted_entries(&tally)), format!("{:?}", org.sorted_entries(&fresh)));
        }
        // Going back in time starts over.
        let back = org.tally(Some(&tally), org.start_epoch() + 10 * DAY);
        assert_eq!(
            format!("{:?}", back.by_user),
            format!("{:?}", org.tally(None, org.start_epoch() + 10 * DAY).by_user)
        );
    }

    #[test]
    fn accesses_stay_inside_their_day() {
        let org = org();
        let mut buf = Vec::new();
        for pos in 0..org.len() {
            for day in 0..=120 {
                buf.clear();
                org.day_accesses(pos, day, &mut buf);
                let start = org.start_epoch() + i64::from(day) * DAY;
                assert!(buf.iter().all(|a| a.at >= start && a.at < start + DAY));
            }
        }
    }
}

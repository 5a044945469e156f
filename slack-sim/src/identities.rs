//! The HR export that correlation reads (`Org::identities_csv`), and which accounts it leaves
//! orphaned or names as terminated while the account is still active.
//!
//! Every identity is a pure function of (seed, account position), like the rest of the
//! organisation, so the CSV and the ground truth never disagree.

use std::fmt::Write as _;

use chrono::{Days, NaiveDate};

use crate::names::DEPARTMENTS;
use crate::org::Org;
use crate::rng::{below, mix, unit};

const T_FATE: u64 = 500;
const T_TERMINATED: u64 = 501;
const T_TERM_DAY: u64 = 502;
const T_EMP_TYPE: u64 = 503;
const T_MANAGER: u64 = 504;
const T_ALT: u64 = 505;

/// How an account relates to the HR export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fate {
    /// No identity at all: a guest, a bot, or a person HR does not know about.
    Orphan,
    /// An identity with the account's own email address.
    ByEmail,
    /// An identity whose address is on the alias domain only (`x@<alias>` for `x@<domain>`).
    ByAlias,
    /// No record has the account's address as its email, but two records list it as an
    /// alternate address: correlation must flag the account, not pick one.
    Ambiguous,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Identity {
    pub fate: Fate,
    /// The termination day, if HR says the person left.
    pub terminated: Option<NaiveDate>,
}

impl Org {
    /// The alias domain some HR records use instead of the Slack email domain.
    pub fn alias_email_domain(&self) -> String {
        format!("mail.{}", self.email_domain())
    }

    pub(crate) fn identity(&self, pos: usize) -> Identity {
        let u = self.user(pos);
        let orphan = Identity { fate: Fate::Orphan, terminated: None };
        // Guests are outsiders and bots are not people: HR lists neither.
        if !u.kind.is_human() || u.kind.is_guest() {
            return orphan;
        }
        let seed = self.seed();
        let r = unit(mix(seed, pos as u64, T_FATE));
        let fate = if pos == 0 {
            Fate::ByEmail
        } else if r < 0.05 {
            return orphan;
        } else if r < 0.13 {
            Fate::ByAlias
        } else if r < 0.15 {
            Fate::Ambiguous
        } else {
            Fate::ByEmail
        };
        let today = self.spec().today;
        let term_day = |tag_day: i32| {
            let start = today.checked_sub_days(Days::new(u64::from(self.spec().history_days))).unwrap_or(today);
            start.checked_add_days(Days::new(tag_day.max(0) as u64)).unwrap_or(start)
        };
        let terminated = if fate == Fate::Ambiguous {
            // Whose termination would it be? Neither record is known to be the account's.
            None
        } else if let Some(day) = self.generated_deleted_day(pos) {
            // HR does not learn from Slack: only the generated offboarding counts here.
            // Offboarding usually follows HR within a day or two, and HR says so for most.
            (unit(mix(seed, pos as u64, T_TERMINATED)) < 0.9).then(|| term_day(day - 1))
        } else if pos != 0 && unit(mix(seed, pos as u64, T_TERMINATED)) < 0.04 {
            let back = 1 + below(mix(seed, pos as u64, T_TERM_DAY), 60) as i32;
            Some(term_day(self.spec().history_days as i32 - back))
        } else {
            None
        };
        Identity { fate, terminated }
    }

    /// Accounts a governance report should flag as having no identity: not deactivated,
    /// human (guests included), and in no HR record by email or alias.
    pub(crate) fn is_orphan(&self, pos: usize) -> bool {
        let u = self.user(pos);
        u.kind.is_human() && !self.is_deleted(pos) && self.identity(pos).fate == Fate::Orphan
    }

    /// The identity id correlation must give the account, if exactly one record is its own.
    pub(crate) fn expected_owner(&self, pos: usize) -> Option<String> {
        matches!(self.identity(pos).fate, Fate::ByEmail | Fate::ByAlias).then(|| format!("HR{:07}", pos + 1))
    }

    pub(crate) fn is_ambiguous(&self, pos: usize) -> bool {
        self.identity(pos).fate == Fate::Ambiguous
    }

    /// Not deactivated, yet HR says the person left on or before `as_of`.
    pub(crate) fn is_terminated_active(&self, pos: usize, as_of: NaiveDate) -> bool {
        !self.is_deleted(pos) && self.identity(pos).terminated.is_some_and(|d| d <= as_of)
    }

    /// The HR export as CSV with a header: `identity_id, email, alternate_email, employee_id,
    /// display_name, department, manager_email, status (active|terminated), termination_date,
    /// employee_type`. Most people match their account by email (case may differ), some only
    /// by the alias domain ([`Org::alias_email_domain`]); some accounts have no record, a few
    /// are claimed by two records through the same alternate address (ambiguous), and a few HR
    /// records belong to people who never had an account.
    pub fn identities_csv(&self) -> String {
        let alias = self.alias_email_domain();
        let mut out = String::from(
            "identity_id,email,alternate_email,employee_id,display_name,department,manager_email,status,termination_date,employee_type\n",
        );
        let seed = self.seed();
        let manager_of = |pos: usize| -> String {
            let candidate =
                if pos < 8 { 0 } else { below(mix(seed, pos as u64, T_MANAGER), (pos as u64).min(64)) as usize };
            let m = if self.identity(candidate).fate == Fate::ByEmail { candidate } else { 0 };
            self.email(m).map(|e| e.to_ascii_lowercase()).unwrap_or_default()
        };
        let mut n = 0u64;
        for pos in 0..self.len() {
            let id = self.identity(pos);
            let Some(email) = self.email(pos) else { continue };
            if id.fate == Fate::Orphan {
                continue;
            }
            let local = email.split('@').next().unwrap_or_default().to_ascii_lowercase();
            let alias_email = format!("{local}@{alias}");
            let (first, last) = self.person_name(pos);
            if id.fate == Fate::Ambiguous {
                // Two records (say a rehire and a contractor profile) both claim the address.
                for (k, prefix) in ["HR", "HX"].iter().enumerate() {
                    n += 1;
                    let _ = writeln!(
                        out,
                        "{prefix}{:07},{local}.{}@{alias},{},{},{first} {last},{},,active,,{}",
                        pos + 1,
                        ["personal", "contractor"][k],
                        email.to_ascii_lowercase(),
                        300_000 + 100_000 * k + pos,
                        DEPARTMENTS[self.department(pos)],
                        ["employee", "contractor"][k],
                    );
                }
                continue;
            }
            let (primary, alternate) = match id.fate {
                Fate::ByAlias => (alias_email, String::new()),
                _ if unit(mix(seed, pos as u64, T_ALT)) < 0.3 => (email.clone(), alias_email),
                _ => (email.clone(), String::new()),
            };
            n += 1;
            let _ = writeln!(
                out,
                "HR{:07},{primary},{alternate},{},{first} {last},{},{},{},{},{}",
                pos + 1,
                100_000 + pos,
                DEPARTMENTS[self.department(pos)],
                if pos == 0 { String::new() } else { manager_of(pos) },
                if id.terminated.is_some() { "terminated" } else { "active" },
                id.terminated.map(|d| d.to_string()).unwrap_or_default(),
                employee_type(seed, pos),
            );
        }
        // People HR knows who never joined Slack: they must match no account.
        for k in 0..(n / 50).max(1) {
            let pos = self.len() + k as usize;
            let (first, last) = self.person_name(pos);
            let _ = writeln!(
                out,
                "HR{:07},{}.{}.nk{k}@{},,{},{first} {last},{},,active,,employee",
                pos + 1,
                first.to_ascii_lowercase(),
                last.to_ascii_lowercase(),
                self.email_domain(),
                100_000 + pos,
                DEPARTMENTS[k as usize % DEPARTMENTS.len()],
            );
        }
        out
    }
}

fn employee_type(seed: u64, pos: usize) -> &'static str {
    match below(mix(seed, pos as u64, T_EMP_TYPE), 20) {
        0..=1 => "contractor",
        2 => "intern",
        _ => "employee",
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use chrono::NaiveDate;

    use crate::org::{Org, OrgSpec, Plan};

    #[test]
    fn identities_match_most_accounts_and_leave_the_rest() {
        let today = NaiveDate::from_ymd_opt(2025, 6, 30).unwrap_or_default();
        let org = Org::generate(&OrgSpec::new(5, 3000, Plan::BusinessPlus, today, 90));
        let csv = org.identities_csv();
        let mut lines = csv.lines();
        assert_eq!(lines.next().map(|h| h.split(',').count()), Some(10));
        let alias = org.alias_email_domain();
        let mut by_email: HashMap<String, Vec<String>> = HashMap::new();
        let mut alternates: HashMap<String, Vec<String>> = HashMap::new();
        for line in lines {
            let cols: Vec<&str> = line.split(',').collect();
            assert_eq!(cols.len(), 10, "{line}");
            assert!(matches!(cols[7], "active" | "terminated"));
            assert_eq!(cols[7] == "terminated", !cols[8].is_empty(), "{line}");
            by_email.insert(cols[1].to_ascii_lowercase(), cols.iter().map(|c| c.to_string()).collect());
            if !cols[2].is_empty() {
                alternates.entry(cols[2].to_ascii_lowercase()).or_default().push(cols[0].to_string());
            }
        }
        let now = today.and_hms_opt(23, 0, 0).unwrap_or_default().and_utc();
        let truth = org.ground_truth(now);
        let (mut direct, mut via_alias, mut orphans, mut terminated) = (0, 0, HashSet::new(), HashSet::new());
        for acc in &truth.accounts {
            let Some(email) = acc.email.as_deref().map(str::to_ascii_lowercase) else { continue };
            let local = email.split('@').next().unwrap_or_default();
            if truth.ambiguous.contains(&acc.id) {
                let claims = alternates.get(&email).map_or(0, Vec::len);
                assert_eq!(claims, 2, "{email} should be claimed by two records");
                assert!(!by_email.contains_key(&email) && !by_email.contains_key(&format!("{local}@{alias}")));
                continue;
            }
            let hit = if let Some(row) = by_email.get(&email) {
                direct += 1;
                Some(row)
            } else if let Some(row) = by_email.get(&format!("{local}@{alias}")) {
                via_alias += 1;
                Some(row)
            } else {
                None
            };
            match hit {
                None if !acc.deleted => {
                    orphans.insert(acc.id.clone());
                }
                Some(row) if row[7] == "terminated" && !acc.deleted => {
                    terminated.insert(acc.id.clone());
                }
                _ => {}
            }
        }
        assert!(direct > 2000 && via_alias > 100, "{direct} {via_alias}");
        assert_eq!(orphans, truth.orphans.iter().cloned().collect());
        assert_eq!(terminated, truth.terminated_active.iter().cloned().collect());
        assert!(!truth.orphans.is_empty() && !truth.terminated_active.is_empty());
        assert!(truth.ambiguous.len() > 20, "{}", truth.ambiguous.len());
        // Every account with a record of its own is owned by it, and only those.
        for (pos, acc) in truth.accounts.iter().enumerate() {
            let owner = truth.owners.get(&acc.id);
            assert_eq!(owner.is_some(), org.expected_owner(pos).is_some(), "{}", acc.id);
            if let Some(o) = owner {
                assert_eq!(o, &format!("HR{:07}", pos + 1));
            }
        }
    }
}

//! The synthetic organisation: its plan and size, every account's kind and flags, and the ground
//! truth (last access per account) that tests compare reports against.
//!
//! Only per-account facts are stored; activity is derived on demand (see `activity`), so memory is
//! proportional to the number of accounts, never to the number of access events.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;
use std::sync::{PoisonError, RwLock};

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::SimError;
use crate::names::{
    APP_NAMES, BOT_NAMES, COMPANIES, COMPANY_SUFFIXES, FIRST_NAMES, GUEST_DOMAINS, LAST_NAMES, NAME_STRIDE, TITLES,
    WORKSPACE_UNITS, ZONES,
};
use crate::rng::{base36, below, mix, parse_base36, permute, unit, unpermute};

/// Slack's plans, which decide which methods answer at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Plan {
    Free,
    Pro,
    BusinessPlus,
    Enterprise,
}

impl Plan {
    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Free => "free",
            Plan::Pro => "pro",
            Plan::BusinessPlus => "business_plus",
            Plan::Enterprise => "enterprise",
        }
    }

    pub fn is_paid(self) -> bool {
        self != Plan::Free
    }

    pub fn default_workspaces(self) -> usize {
        if self == Plan::Enterprise { 3 } else { 1 }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Plan {
    type Err = SimError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "free" => Ok(Plan::Free),
            "pro" | "standard" => Ok(Plan::Pro),
            "business_plus" | "business+" | "business-plus" | "businessplus" => Ok(Plan::BusinessPlus),
            "enterprise" | "grid" | "enterprise_grid" => Ok(Plan::Enterprise),
            _ => Err(SimError::UnknownPlan(s.to_owned())),
        }
    }
}

/// What to generate. Equal specs generate identical organisations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrgSpec {
    pub seed: u64,
    /// Accounts generated, of every kind; Slackbot comes on top.
    pub users: usize,
    pub plan: Plan,
    /// The last simulated day; activity exists on days `[today - history_days, today]`.
    pub today: NaiveDate,
    pub history_days: u32,
    /// Workspaces in the organisation; only Enterprise Grid has more than one. 0 (what an older
    /// serialised spec deserialises to) means the plan's default.
    #[serde(default)]
    pub workspaces: usize,
}

impl OrgSpec {
    pub fn new(seed: u64, users: usize, plan: Plan, today: NaiveDate, history_days: u32) -> Self {
        Self { seed, users, plan, today, history_days, workspaces: plan.default_workspaces() }
    }

    /// The number of workspaces actually generated: other plans are one workspace by definition,
    /// and a Grid is capped at 32 so membership fits a bit mask.
    pub fn workspace_count(&self) -> usize {
        match self.plan {
            Plan::Enterprise if self.workspaces == 0 => Plan::Enterprise.default_workspaces(),
            Plan::Enterprise => self.workspaces.min(32),
            _ => 1,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    PrimaryOwner,
    Owner,
    Admin,
    Member,
    GuestMulti,
    GuestSingle,
    Bot,
    App,
    Slackbot,
}

impl Kind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::PrimaryOwner => "primary_owner",
            Kind::Owner => "owner",
            Kind::Admin => "admin",
            Kind::Member => "member",
            Kind::GuestMulti => "guest_multi",
            Kind::GuestSingle => "guest_single",
            Kind::Bot => "bot",
            Kind::App => "app",
            Kind::Slackbot => "slackbot",
        }
    }

    pub(crate) fn is_human(self) -> bool {
        !matches!(self, Kind::Bot | Kind::App | Kind::Slackbot)
    }

    pub(crate) fn is_guest(self) -> bool {
        matches!(self, Kind::GuestMulti | Kind::GuestSingle)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Profile {
    Daily,
    Occasional,
    Dormant,
    Never,
}

/// One account. Everything else about it (names, clients, accesses) is derived from its position.
#[derive(Debug)]
pub(crate) struct UserRec {
    pub id: Box<str>,
    pub name: Box<str>,
    pub kind: Kind,
    pub deleted: bool,
    pub invited: bool,
    pub profile: Profile,
    pub zone: u8,
    /// How many distinct clients (desktop, mobile, browser) the person uses, 1..=3.
    pub clients: u8,
    /// Which client kind comes first in that person's rotation.
    pub first_client: u8,
    /// First and last day index (inclusive) on which the account may have accessed Slack;
    /// `hi < lo` means never.
    pub lo: i32,
    pub hi: i32,
    /// The day `hi` is certainly active: dormant people stop on a definite day.
    pub force_hi: bool,
    pub updated: i64,
    pub has_2fa: bool,
    /// Seeds every per-day decision about this account's activity.
    pub key: u64,
}

// Tags keep the hash streams for different facts independent.
const T_KIND: u64 = 1;
const T_DELETED: u64 = 2;
const T_INVITED: u64 = 3;
const T_PROFILE: u64 = 4;
const T_ZONE: u64 = 5;
const T_CLIENTS: u64 = 6;
const T_FIRST_CLIENT: u64 = 7;
const T_JOIN: u64 = 8;
const T_JOIN_DAY: u64 = 9;
const T_CUTOFF: u64 = 10;
const T_DELETED_DAY: u64 = 11;
const T_UPDATED: u64 = 12;
const T_2FA: u64 = 13;
const T_BOT_NAME: u64 = 14;
const T_TEAM: u64 = 15;
const T_EMAIL_CASE: u64 = 16;
const T_GUEST_DOMAIN: u64 = 17;
pub(crate) const T_PROFILE_FIELDS: u64 = 18;
const T_ACTIVITY_KEY: u64 = 19;
const T_HOME_WS: u64 = 20;
const T_OTHER_WS: u64 = 21;
const T_DEPARTMENT: u64 = 22;
const T_CREATED: u64 = 23;
const T_EXTERNAL_ID: u64 = 24;

/// The generated organisation. Immutable once built.
pub struct Org {
    spec: OrgSpec,
    team_id: String,
    team_name: String,
    domain: String,
    email_domain: String,
    enterprise_id: Option<String>,
    /// Workspace 0 is the one above (`team_id`, `team_name`, `domain`); Grid adds more.
    workspaces: Vec<Workspace>,
    /// Generated accounts in generation order, then Slackbot last.
    users: Vec<UserRec>,
    /// 00:00 UTC of day index 0.
    start_epoch: i64,
    /// Weekday of day index 0, Monday = 0.
    start_weekday: u32,
    id_key: u64,
    name_offset: u64,
    /// What SCIM writes changed since generation: per position, its `active` transitions in
    /// time order (`(active, epoch seconds)`). Every read (users.list, SCIM, billing, analytics,
    /// access logs, ground truth) goes through [`Org::is_deleted`] / [`Org::deleted_day`] /
    /// [`Org::active_at`], so a deactivation is visible everywhere from the moment it is made.
    scim_changes: RwLock<HashMap<usize, Vec<(bool, i64)>>>,
}

impl fmt::Debug for Org {
    // Listing half a million accounts helps nobody reading a debug print.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Org")
            .field("team_id", &self.team_id)
            .field("team_name", &self.team_name)
            .field("spec", &self.spec)
            .field("accounts", &self.users.len())
            .finish_non_exhaustive()
    }
}

/// One workspace of the organisation.
#[derive(Clone, Debug)]
pub(crate) struct Workspace {
    pub id: String,
    pub name: String,
    pub domain: String,
}

pub(crate) const SLACKBOT_ID: &str = "USLACKBOT";
const DAY: i64 = 86_400;

impl Org {
    pub fn generate(spec: &OrgSpec) -> Org {
        let seed = spec.seed;
        let history = i32::try_from(spec.history_days).unwrap_or(i32::MAX / 2);
        let start = spec.today.checked_sub_days(Days::new(u64::from(spec.history_days))).unwrap_or(NaiveDate::MIN);
        let start_epoch = start.and_hms_opt(0, 0, 0).map_or(0, |t| t.and_utc().timestamp());
        let today_epoch = start_epoch + i64::from(history) * DAY;

        let team_id = format!("T{}", base36(mix(seed, 0, T_TEAM) % 36u64.pow(8), 8));
        let company = COMPANIES[below(mix(seed, 1, T_TEAM), COMPANIES.len() as u64) as usize];
        let suffix = COMPANY_SUFFIXES[below(mix(seed, 2, T_TEAM), COMPANY_SUFFIXES.len() as u64) as usize];
        let team_name = format!("{company} {suffix}");
        let slug = team_name.to_ascii_lowercase().replace(' ', "-");
        let email_domain = format!("{}.example", slug.replace('-', ""));
        let enterprise_id =
            (spec.plan == Plan::Enterprise).then(|| format!("E{}", base36(mix(seed, 3, T_TEAM) % 36u64.pow(8), 8)));

        let mut workspaces = vec![Workspace { id: team_id.clone(), name: team_name.clone(), domain: slug.clone() }];
        for w in 1..spec.workspace_count() {
            let unit_name = WORKSPACE_UNITS[(w - 1) % WORKSPACE_UNITS.len()];
            let round = (w - 1) / WORKSPACE_UNITS.len();
            let name = if round == 0 {
                format!("{team_name} {unit_name}")
            } else {
                format!("{team_name} {unit_name} {}", round + 1)
            };
            workspaces.push(Workspace {
                id: format!("T{}", base36(mix(seed, 100 + w as u64, T_TEAM) % 36u64.pow(8), 8)),
                domain: name.to_ascii_lowercase().replace(' ', "-"),
                name,
            });
        }
        let mut org = Org {
            spec: spec.clone(),
            team_id,
            team_name,
            workspaces,
            domain: slug,
            email_domain,
            enterprise_id,
            users: Vec::with_capacity(spec.users + 1),
            start_epoch,
            start_weekday: start.weekday().num_days_from_monday(),
            id_key: mix(seed, 4, T_TEAM),
            name_offset: mix(seed, 5, T_TEAM) % 4096,
            scim_changes: RwLock::new(HashMap::new()),
        };

        let mut bot_names: HashMap<&'static str, u32> = HashMap::new();
        for i in 0..spec.users {
            let rec = org.generate_user(i, history, today_epoch, &mut bot_names);
            org.users.push(rec);
        }
        org.users.push(UserRec {
            id: SLACKBOT_ID.into(),
            name: "slackbot".into(),
            kind: Kind::Slackbot,
            deleted: false,
            invited: false,
            profile: Profile::Never,
            zone: 0,
            clients: 0,
            first_client: 0,
            lo: 0,
            hi: -1,
            force_hi: false,
            updated: 0,
            has_2fa: false,
            key: 0,
        });
        org
    }

    fn generate_user(
        &self,
        i: usize,
        history: i32,
        today_epoch: i64,
        bot_names: &mut HashMap<&'static str, u32>,
    ) -> UserRec {
        let seed = self.spec.seed;
        let i64i = i as u64;
        let h = |tag: u64| mix(seed, i64i, tag);

        let kind = match i {
            0 => Kind::PrimaryOwner,
            1 | 2 => Kind::Owner,
            _ => {
                let r = unit(h(T_KIND));
                if r < 0.03 {
                    Kind::Admin
                } else if r < 0.08 {
                    Kind::GuestMulti
                } else if r < 0.11 {
                    Kind::GuestSingle
                } else if r < 0.14 {
                    Kind::Bot
                } else if r < 0.15 {
                    Kind::App
                } else {
                    Kind::Member
                }
            }
        };
        // The primary owner is the one whose token the simulator hands out; keep it alive.
        let deleted = i != 0 && unit(h(T_DELETED)) < 0.08;
        let invited = !deleted
            && matches!(kind, Kind::Member | Kind::GuestMulti | Kind::GuestSingle)
            && unit(h(T_INVITED)) < 0.025;
        let profile = if !kind.is_human() || invited {
            Profile::Never
        } else if i == 0 {
            Profile::Daily
        } else {
            let r = unit(h(T_PROFILE));
            if r < 0.50 {
                Profile::Daily
            } else if r < 0.70 {
                Profile::Occasional
            } else if r < 0.85 {
                Profile::Dormant
            } else {
                Profile::Never
            }
        };

        let mut lo = 0;
        if profile != Profile::Dormant && history > 0 && unit(h(T_JOIN)) < 0.15 {
            lo = 1 + below(h(T_JOIN_DAY), history as u64) as i32;
        }
        let mut hi = match profile {
            Profile::Daily | Profile::Occasional => history,
            Profile::Dormant => history - 20 - below(h(T_CUTOFF), 181) as i32,
            Profile::Never => -1,
        };
        let mut updated = today_epoch - below(h(T_UPDATED), 400 * DAY as u64) as i64;
        if deleted {
            let deleted_day = below(h(T_DELETED_DAY), history as u64 + 1) as i32;
            hi = hi.min(deleted_day - 1);
            updated = self.start_epoch + i64::from(deleted_day) * DAY + below(h(T_UPDATED), DAY as u64) as i64;
        }

        let id = format!("{}{}", self.id_prefix(), base36(permute(self.id_key, i64i), 10));
        let name = match kind {
            Kind::Bot | Kind::App => {
                let list: &[&'static str] = if kind == Kind::Bot { &BOT_NAMES } else { &APP_NAMES };
                let base = list[below(h(T_BOT_NAME), list.len() as u64) as usize];
                let n = bot_names.entry(base).or_insert(0);
                *n += 1;
                if *n == 1 { base.to_owned() } else { format!("{base}{n}") }
            }
            _ => {
                let (first, last) = self.person_name(i);
                let block = i / 4096;
                let mut name = format!("{}.{}", first.to_ascii_lowercase(), last.to_ascii_lowercase());
                if block > 0 {
                    name.push_str(&(block + 1).to_string());
                }
                name
            }
        };

        UserRec {
            id: id.into(),
            name: name.into(),
            kind,
            deleted,
            invited,
            profile,
            zone: below(h(T_ZONE), ZONES.len() as u64) as u8,
            clients: 1 + below(h(T_CLIENTS), 3) as u8,
            first_client: {
                let r = unit(h(T_FIRST_CLIENT));
                if r < 0.6 {
                    0
                } else if r < 0.85 {
                    2
                } else {
                    1
                }
            },
            lo,
            hi,
            force_hi: profile == Profile::Dormant,
            updated,
            has_2fa: kind.is_human() && unit(h(T_2FA)) < 0.6,
            key: h(T_ACTIVITY_KEY),
        }
    }

    pub fn spec(&self) -> &OrgSpec {
        &self.spec
    }

    pub fn team_id(&self) -> &str {
        &self.team_id
    }

    pub fn team_name(&self) -> &str {
        &self.team_name
    }

    /// The workspace's Slack subdomain (`<domain>.slack.com`).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    pub fn email_domain(&self) -> &str {
        &self.email_domain
    }

    pub fn enterprise_id(&self) -> Option<&str> {
        self.enterprise_id.as_deref()
    }

    /// Number of accounts including Slackbot.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Never true: Slackbot is always there.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    pub(crate) fn users(&self) -> &[UserRec] {
        &self.users
    }

    pub(crate) fn user(&self, pos: usize) -> &UserRec {
        &self.users[pos]
    }

    pub(crate) fn seed(&self) -> u64 {
        self.spec.seed
    }

    pub(crate) fn start_epoch(&self) -> i64 {
        self.start_epoch
    }

    pub(crate) fn start_weekday(&self) -> u32 {
        self.start_weekday
    }

    /// Grid accounts are organisation-wide, and Slack gives those `W…` IDs.
    fn id_prefix(&self) -> char {
        if self.spec.plan == Plan::Enterprise { 'W' } else { 'U' }
    }

    pub(crate) fn workspaces(&self) -> &[Workspace] {
        &self.workspaces
    }

    /// Workspace IDs, the first being [`Org::team_id`].
    pub fn workspace_ids(&self) -> Vec<String> {
        self.workspaces.iter().map(|w| w.id.clone()).collect()
    }

    pub(crate) fn workspace_index(&self, team_id: &str) -> Option<usize> {
        self.workspaces.iter().position(|w| w.id == team_id)
    }

    /// The account's home workspace (its `team_id`).
    pub(crate) fn home_workspace(&self, pos: usize) -> usize {
        let n = self.workspaces.len();
        if n == 1 || pos == 0 || pos + 1 == self.users.len() {
            return 0;
        }
        below(mix(self.seed(), pos as u64, T_HOME_WS), n as u64) as usize
    }

    /// Bit w set = a member of workspace w. Owners and Slackbot are everywhere; other people
    /// join a few workspaces besides their home one.
    /// The ids of the workspaces the account at `pos` belongs to.
    pub(crate) fn member_workspace_ids(&self, pos: usize) -> Vec<&str> {
        let mask = self.workspace_mask(pos);
        self.workspaces.iter().enumerate().filter(|(w, _)| mask & (1 << w) != 0).map(|(_, w)| w.id.as_str()).collect()
    }

    pub(crate) fn workspace_mask(&self, pos: usize) -> u32 {
        let n = self.workspaces.len();
        if n == 1 {
            return 1;
        }
        let all = if n >= 32 { u32::MAX } else { (1u32 << n) - 1 };
        if pos == 0 || pos + 1 == self.users.len() || matches!(self.users[pos].kind, Kind::Owner) {
            return all;
        }
        let mut mask = 1u32 << self.home_workspace(pos);
        for w in 0..n {
            if unit(mix(self.seed(), pos as u64 * 64 + w as u64, T_OTHER_WS)) < 0.25 {
                mask |= 1 << w;
            }
        }
        mask
    }

    pub(crate) fn in_workspace(&self, pos: usize, ws: usize) -> bool {
        self.workspace_mask(pos) & (1 << ws) != 0
    }

    /// The day index an account was deactivated on, if it is deactivated now (generated so, or
    /// by a SCIM write; a SCIM re-activation clears it).
    pub(crate) fn deleted_day(&self, pos: usize) -> Option<i32> {
        if let Some(&(active, at)) = self.scim_last_change(pos).as_ref() {
            return (!active).then(|| i32::try_from(self.day_of(at)).unwrap_or(i32::MAX));
        }
        self.generated_deleted_day(pos)
    }

    /// The day index the generated organisation deactivated the account on, whatever SCIM did since.
    pub(crate) fn generated_deleted_day(&self, pos: usize) -> Option<i32> {
        let u = &self.users[pos];
        u.deleted
            .then(|| below(mix(self.seed(), pos as u64, T_DELETED_DAY), u64::from(self.spec.history_days) + 1) as i32)
    }

    /// Whether the account is deactivated now: its generated state, or the last SCIM write.
    pub(crate) fn is_deleted(&self, pos: usize) -> bool {
        match self.scim_last_change(pos) {
            Some((active, _)) => !active,
            None => self.users[pos].deleted,
        }
    }

    fn scim_last_change(&self, pos: usize) -> Option<(bool, i64)> {
        let changes = self.scim_changes.read().unwrap_or_else(PoisonError::into_inner);
        changes.get(&pos).and_then(|v| v.last().copied())
    }

    /// False while a SCIM write had the account deactivated at `at`: no access can happen then
    /// (Slack signs a deactivated user out of every session: "Deactivating a member's account
    /// will sign them out of all Slack apps", help article 204475027).
    pub(crate) fn active_at(&self, pos: usize, at: i64) -> bool {
        let changes = self.scim_changes.read().unwrap_or_else(PoisonError::into_inner);
        match changes.get(&pos) {
            None => true,
            Some(v) => v.iter().rev().find(|(_, t)| *t <= at).is_none_or(|(active, _)| *active),
        }
    }

    /// Records a SCIM write that set `active` at epoch `at`. Returns whether it changed the state.
    pub(crate) fn set_active(&self, pos: usize, active: bool, at: i64) -> bool {
        let was = !self.is_deleted(pos);
        if was == active {
            return false;
        }
        let mut changes = self.scim_changes.write().unwrap_or_else(PoisonError::into_inner);
        changes.entry(pos).or_default().push((active, at));
        true
    }

    /// Whether the customer's IdP provisioned this account (a non-empty SCIM `externalId`):
    /// "externalId … An identifier for the user as defined by the provisioning client", RFC 7643
    /// §3.1; Slack echoes what the IdP set (contract sample `scim__v2__Users.json` carries the
    /// attribute). Here a deterministic 30% of the people, never bots.
    pub(crate) fn external_id(&self, pos: usize) -> Option<String> {
        let u = &self.users[pos];
        (u.kind.is_human() && unit(mix(self.seed(), pos as u64, T_EXTERNAL_ID)) < 0.3)
            .then(|| format!("00u{:016x}", mix(self.seed(), pos as u64, T_EXTERNAL_ID + 1)))
    }

    /// The account's department, which also decides its user groups.
    pub(crate) fn department(&self, pos: usize) -> usize {
        below(mix(self.seed(), pos as u64, T_DEPARTMENT), crate::names::DEPARTMENTS.len() as u64) as usize
    }

    /// When the account was created: on its first possible day, or before the history for
    /// people who were already there.
    pub(crate) fn date_created(&self, pos: usize) -> i64 {
        let u = &self.users[pos];
        let h = mix(self.seed(), pos as u64, T_CREATED);
        if u.lo > 0 {
            self.start_epoch + i64::from(u.lo) * DAY - below(h, 3 * DAY as u64) as i64
        } else {
            self.start_epoch - below(h, 700 * DAY as u64) as i64 - DAY
        }
    }

    /// Position of an account in listing order, found by inverting the ID permutation.
    pub(crate) fn position_of(&self, id: &str) -> Option<usize> {
        if id == SLACKBOT_ID {
            return Some(self.users.len() - 1);
        }
        let digits = id.strip_prefix(self.id_prefix()).filter(|d| d.len() == 10)?;
        let value = parse_base36(digits)?;
        if value >= 1 << 51 {
            return None;
        }
        let pos = usize::try_from(unpermute(self.id_key, value)).ok()?;
        (pos + 1 < self.users.len() && &*self.users[pos].id == id).then_some(pos)
    }

    pub(crate) fn person_name(&self, pos: usize) -> (&'static str, &'static str) {
        let combo = ((pos as u64).wrapping_mul(NAME_STRIDE) + self.name_offset) % 4096;
        (FIRST_NAMES[(combo / 64) as usize], LAST_NAMES[(combo % 64) as usize])
    }

    pub(crate) fn title(&self, pos: usize) -> &'static str {
        TITLES[below(mix(self.seed(), pos as u64, T_PROFILE_FIELDS), TITLES.len() as u64) as usize]
    }

    /// The account's email of record; bots, apps and Slackbot have none.
    pub(crate) fn email(&self, pos: usize) -> Option<String> {
        let u = &self.users[pos];
        if !u.kind.is_human() {
            return None;
        }
        let domain = if u.kind.is_guest() {
            GUEST_DOMAINS[below(mix(self.seed(), pos as u64, T_GUEST_DOMAIN), 3) as usize]
        } else {
            &self.email_domain
        };
        // A few people's addresses were typed with capitals; correlation must normalise case.
        let local = if unit(mix(self.seed(), pos as u64, T_EMAIL_CASE)) < 0.02 {
            u.name
                .split('.')
                .map(|part| {
                    let mut cs = part.chars();
                    cs.next().map(|c| c.to_ascii_uppercase().to_string() + cs.as_str()).unwrap_or_default()
                })
                .collect::<Vec<_>>()
                .join(".")
        } else {
            u.name.to_string()
        };
        Some(format!("{local}@{domain}"))
    }

    fn account(&self, pos: usize, last_access: Option<DateTime<Utc>>) -> GroundTruthAccount {
        let u = &self.users[pos];
        GroundTruthAccount {
            id: u.id.to_string(),
            team_id: self.workspaces[self.home_workspace(pos)].id.clone(),
            name: u.name.to_string(),
            email: self.email(pos),
            kind: u.kind.as_str().to_owned(),
            deleted: self.is_deleted(pos),
            invited: u.invited,
            last_access,
        }
    }

    /// Every account including Slackbot, in listing order, without activity.
    pub fn accounts(&self) -> Vec<GroundTruthAccount> {
        (0..self.users.len()).map(|pos| self.account(pos, None)).collect()
    }

    /// Each account's last access at or before `as_of`, exactly as the access logs would show it
    /// with the simulator clock at `as_of`.
    pub fn ground_truth(&self, as_of: DateTime<Utc>) -> GroundTruth {
        let at = as_of.timestamp();
        let accounts = (0..self.users.len())
            .map(|pos| {
                let last = self.last_access(pos, at).and_then(|t| DateTime::<Utc>::from_timestamp(t, 0));
                self.account(pos, last)
            })
            .collect();
        let day = as_of.date_naive();
        let orphans =
            (0..self.users.len()).filter(|&p| self.is_orphan(p)).map(|p| self.users[p].id.to_string()).collect();
        let terminated_active = (0..self.users.len())
            .filter(|&p| self.is_terminated_active(p, day))
            .map(|p| self.users[p].id.to_string())
            .collect();
        let owners = (0..self.users.len())
            .filter_map(|p| self.expected_owner(p).map(|o| (self.users[p].id.to_string(), o)))
            .collect();
        let ambiguous =
            (0..self.users.len()).filter(|&p| self.is_ambiguous(p)).map(|p| self.users[p].id.to_string()).collect();
        let departments = (0..self.users.len())
            .filter(|&p| self.expected_owner(p).is_some())
            .map(|p| (self.users[p].id.to_string(), crate::names::DEPARTMENTS[self.department(p)].to_owned()))
            .collect();
        let billable = self.billable_accounts(day);
        GroundTruth {
            as_of,
            team_id: self.team_id.clone(),
            accounts,
            orphans,
            terminated_active,
            owners,
            ambiguous,
            departments,
            billable,
        }
    }
}

/// The accounts and their true last access as of one instant.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct GroundTruth {
    pub as_of: DateTime<Utc>,
    pub team_id: String,
    pub accounts: Vec<GroundTruthAccount>,
    /// Live human accounts (guests included) that no record of [`Org::identities_csv`] matches,
    /// neither by email (case-insensitive) nor by the alias domain. Accounts in `ambiguous` are
    /// claimed by two records and so are not orphans.
    #[serde(default)]
    pub orphans: BTreeSet<String>,
    /// Live accounts whose identity is terminated on or before the as-of date.
    #[serde(default)]
    pub terminated_active: BTreeSet<String>,
    /// Account id → the identity id correlation must give it (deactivated accounts included):
    /// the record with the account's email, or only its alias-domain address.
    #[serde(default)]
    pub owners: BTreeMap<String, String>,
    /// Accounts that two records claim through the same alternate address: correlation must
    /// flag them ambiguous (deactivated accounts included).
    #[serde(default)]
    pub ambiguous: BTreeSet<String>,
    /// Account id → the department of its owner's HR record (accounts in `owners` only).
    #[serde(default)]
    pub departments: BTreeMap<String, String>,
    /// Accounts `team.billableInfo` reports as billed on the as-of day (Fair Billing, which
    /// trails activity by a few days); empty on the Free plan.
    #[serde(default)]
    pub billable: BTreeSet<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct GroundTruthAccount {
    pub id: String,
    pub team_id: String,
    pub name: String,
    pub email: Option<String>,
    /// "member" | "admin" | "owner" | "primary_owner" | "guest_multi" | "guest_single" | "bot" |
    /// "app" | "slackbot"
    pub kind: String,
    pub deleted: bool,
    pub invited: bool,
    /// The latest access-log `date_last` at or before `as_of`; None if never.
    pub last_access: Option<DateTime<Utc>>,
}

impl GroundTruth {
    /// Accounts a dormant report must list: not deleted, not bot/app/slackbot, and no access in
    /// the `days` days ending on the as-of date, i.e. last_access is None or
    /// date(last_access) <= as_of.date() - days.
    pub fn dormant(&self, days: u32) -> BTreeSet<String> {
        let cutoff = self.as_of.date_naive().checked_sub_days(Days::new(u64::from(days))).unwrap_or(NaiveDate::MIN);
        self.accounts
            .iter()
            .filter(|a| !a.deleted && !matches!(a.kind.as_str(), "bot" | "app" | "slackbot"))
            .filter(|a| a.last_access.is_none_or(|t| t.date_naive() <= cutoff))
            .map(|a| a.id.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn spec(users: usize) -> OrgSpec {
        let today = NaiveDate::from_ymd_opt(2025, 6, 30).unwrap_or_default();
        OrgSpec::new(42, users, Plan::Pro, today, 365)
    }

    #[test]
    fn org_can_be_shared_across_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Org>();
        shareable::<GroundTruth>();
    }

    #[test]
    fn plan_parses_aliases() {
        assert_eq!("free".parse::<Plan>().ok(), Some(Plan::Free));
        assert_eq!("Business+".parse::<Plan>().ok(), Some(Plan::BusinessPlus));
        assert_eq!("business_plus".parse::<Plan>().ok(), Some(Plan::BusinessPlus));
        assert_eq!("grid".parse::<Plan>().ok(), Some(Plan::Enterprise));
        assert!("gold".parse::<Plan>().is_err());
        assert_eq!(serde_json::to_string(&Plan::BusinessPlus).ok().as_deref(), Some("\"business_plus\""));
    }

    #[test]
    fn generation_is_deterministic_and_ids_unique() {
        let a = Org::generate(&spec(3000));
        let b = Org::generate(&spec(3000));
        assert_eq!(a.accounts(), b.accounts());
        assert_eq!(a.team_id().len(), 9);
        assert!(a.team_id().starts_with('T'));

        let accounts = a.accounts();
        assert_eq!(accounts.len(), 3001);
        let ids: HashSet<_> = accounts.iter().map(|a| a.id.as_str()).collect();
        let names: HashSet<_> = accounts.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(ids.len(), accounts.len());
        assert_eq!(names.len(), accounts.len());
        for acc in &accounts[..3000] {
            assert!(acc.id.starts_with('U') && acc.id.len() == 11, "{}", acc.id);
            assert!(acc.id[1..].bytes().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()));
        }
        assert_eq!(accounts[3000].id, SLACKBOT_ID);
        for pos in 0..a.len() {
            assert_eq!(a.position_of(&a.user(pos).id), Some(pos));
        }
        assert_eq!(a.position_of("UZZZZZZZZZZ"), None);

        let other = Org::generate(&OrgSpec { seed: 43, ..spec(10) });
        assert_ne!(other.accounts()[0].id, accounts[0].id);
    }

    #[test]
    fn every_kind_appears_in_plausible_shares() {
        let org = Org::generate(&spec(5000));
        let accounts = org.accounts();
        let count = |k: &str| accounts.iter().filter(|a| a.kind == k).count();
        assert_eq!(count("primary_owner"), 1);
        assert_eq!(count("owner"), 2);
        assert_eq!(count("slackbot"), 1);
        for (kind, share) in
            [("admin", 0.03), ("guest_multi", 0.05), ("guest_single", 0.03), ("bot", 0.03), ("app", 0.01)]
        {
            let got = count(kind) as f64 / 5000.0;
            assert!((got - share).abs() < share * 0.5, "{kind}: {got}");
        }
        let deleted = accounts.iter().filter(|a| a.deleted).count() as f64 / 5000.0;
        let invited = accounts.iter().filter(|a| a.invited).count() as f64 / 5000.0;
        assert!((0.06..0.10).contains(&deleted), "{deleted}");
        assert!((0.01..0.03).contains(&invited), "{invited}");
        for acc in &accounts {
            let human = !matches!(acc.kind.as_str(), "bot" | "app" | "slackbot");
            assert_eq!(acc.email.is_some(), human, "{acc:?}");
        }
    }

    #[test]
    fn ground_truth_follows_profiles() {
        let org = Org::generate(&spec(2000));
        let as_of = org.spec().today.and_hms_opt(23, 59, 59).unwrap_or_default().and_utc();
        let gt = org.ground_truth(as_of);
        for (pos, acc) in gt.accounts.iter().enumerate() {
            let u = org.user(pos);
            if !u.kind.is_human() || u.invited || u.profile == Profile::Never {
                assert_eq!(acc.last_access, None, "{acc:?}");
            }
            if let Some(t) = acc.last_access {
                assert!(t <= as_of);
                assert!(t.timestamp() >= org.start_epoch());
            }
        }
        let active = gt.accounts.iter().filter(|a| a.last_access.is_some()).count();
        assert!(active > 1000, "{active}");

        let dormant = gt.dormant(30);
        assert!(!dormant.is_empty());
        for id in &dormant {
            let acc = gt.accounts.iter().find(|a| &a.id == id);
            assert!(acc.is_some_and(|a| !a.deleted && a.kind != "bot"));
        }
        // A longer window only narrows the list, down to the people never seen at all.
        let never = gt.dormant(100_000);
        assert!(never.is_subset(&dormant));
        assert!(never.iter().all(|id| gt.accounts.iter().any(|a| &a.id == id && a.last_access.is_none())));
    }

    #[test]
    fn dormant_window_is_inclusive_on_the_cutoff_day() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).map(|d| d.with_timezone(&Utc)).ok();
        let acc = |id: &str, last: Option<DateTime<Utc>>| GroundTruthAccount {
            id: id.into(),
            team_id: "T1".into(),
            name: id.into(),
            email: None,
            kind: "member".into(),
            deleted: false,
            invited: false,
            last_access: last,
        };
        let gt = GroundTruth {
            as_of: t("2025-06-30T12:00:00Z").unwrap_or_default(),
            team_id: "T1".into(),
            accounts: vec![
                acc("on_cutoff", t("2025-05-31T23:59:59Z")),
                acc("after_cutoff", t("2025-06-01T00:00:00Z")),
                acc("never", None),
                GroundTruthAccount { kind: "bot".into(), ..acc("bot", None) },
                GroundTruthAccount { deleted: true, ..acc("gone", None) },
            ],
            orphans: BTreeSet::new(),
            terminated_active: BTreeSet::new(),
            owners: BTreeMap::new(),
            ambiguous: BTreeSet::new(),
            departments: BTreeMap::new(),
            billable: BTreeSet::new(),
        };
        let d = gt.dormant(30);
        assert_eq!(d.into_iter().collect::<Vec<_>>(), ["never", "on_cutoff"]);
    }
}

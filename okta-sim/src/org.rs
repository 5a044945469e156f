//! The simulated Okta organisation: its users (people, Okta-only users, service accounts), its
//! app instances, every System Log event of the history, and the ground truth tests compare with.
//!
//! Everything is a pure function of the [`OktaOrgSpec`], so equal specs give equal organisations.
//! Events are materialised once (they are few next to Slack's access logs: a login and a few SSOs
//! per person-day) and served by the server in either of the System Log's two orders.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::rng::{base62, below, mix, mix64, unit, uuid_like};

/// A person the organisation knows, shared with another simulator's organisation (for example
/// slack-sim's HR export, see [`OktaOrgSpec::people_from_slack`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Person {
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub department: Option<String>,
    /// The manager's email; resolved to `profile.manager` (display name) and `profile.managerId`
    /// when the manager is an Okta user too.
    pub manager_email: Option<String>,
    pub employee_number: Option<String>,
    /// `profile.userType` ("employee", "contractor", ...).
    pub user_type: Option<String>,
    /// The person's Slack account, when they have one: the Slack app is assigned to them in Okta.
    pub slack_user_id: Option<String>,
    /// HR says the person left: their Okta user is SUSPENDED or DEPROVISIONED.
    pub left: bool,
}

/// What to generate. Equal specs generate identical organisations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OktaOrgSpec {
    pub seed: u64,
    /// The last simulated day; events exist on days `[today - history_days, today]`.
    pub today: NaiveDate,
    /// Longer than the System Log's 90-day retention by default, so some users' `lastLogin`
    /// predates every event the API still returns.
    pub history_days: u32,
    /// Domain of Okta-only users and service accounts.
    pub email_domain: String,
    pub people: Vec<Person>,
    /// Users only Okta knows (admins, contractors); their statuses cycle through all eight, so
    /// every status exists in every organisation.
    pub okta_only_users: usize,
    /// Service accounts: ACTIVE users that never start a session and act through the API (they
    /// are the actors of `user.lifecycle.create` events).
    pub service_accounts: usize,
    /// The label of the Slack app instance; SSOs into it are what maps to Slack accounts.
    pub slack_app_label: String,
    /// Labels of the other app instances.
    pub other_apps: Vec<String>,
    /// Share of events persisted late (minutes after `published`), see [`crate::server`].
    pub late_fraction: f64,
    /// The longest delay of a late event, seconds.
    pub late_max_secs: u32,
}

impl OktaOrgSpec {
    pub fn new(seed: u64, today: NaiveDate, people: Vec<Person>) -> Self {
        Self {
            seed,
            today,
            history_days: 120,
            email_domain: "okta-sim.example".to_owned(),
            people,
            okta_only_users: 16,
            service_accounts: 2,
            slack_app_label: "Slack".to_owned(),
            other_apps: ["Google Workspace", "Zoom", "GitHub Enterprise Cloud", "Atlassian Cloud", "Workday"]
                .map(str::to_owned)
                .to_vec(),
            late_fraction: 0.02,
            late_max_secs: 3_600,
        }
    }

    /// An Okta organisation whose people are the slack-sim organisation's HR records: same
    /// emails, names, departments and managers, with `slack_user_id` set where the record's
    /// email (or alternate email) is a Slack account's. Its `today` and email domain are Slack's.
    pub fn from_slack(org: &lastseen_slack_sim::Org, seed: u64) -> Self {
        let mut spec = Self::new(seed, org.spec().today, Self::people_from_slack(org));
        spec.email_domain = org.email_domain().to_owned();
        spec
    }

    /// The people of slack-sim's HR export ([`lastseen_slack_sim::Org::identities_csv`]): every
    /// record, terminated ones as `left`, linked to the Slack account with its email.
    pub fn people_from_slack(org: &lastseen_slack_sim::Org) -> Vec<Person> {
        let slack_by_email: HashMap<String, String> =
            org.accounts().into_iter().filter_map(|a| a.email.map(|e| (e.to_ascii_lowercase(), a.id))).collect();
        let csv = org.identities_csv();
        let mut people = Vec::new();
        // identity_id,email,alternate_email,employee_id,display_name,department,manager_email,
        // status,termination_date,employee_type (slack-sim never quotes: no field has a comma).
        for line in csv.lines().skip(1) {
            let f: Vec<&str> = line.split(',').collect();
            if f.len() != 10 {
                continue;
            }
            let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
            let (first, last) = f[4].split_once(' ').unwrap_or((f[4], ""));
            let slack_user_id = slack_by_email
                .get(&f[1].to_ascii_lowercase())
                .or_else(|| slack_by_email.get(&f[2].to_ascii_lowercase()))
                .cloned();
            people.push(Person {
                email: f[1].to_owned(),
                first_name: first.to_owned(),
                last_name: last.to_owned(),
                department: non_empty(f[5]),
                manager_email: non_empty(f[6]),
                employee_number: non_empty(f[3]),
                user_type: non_empty(f[9]),
                slack_user_id,
                left: f[7] == "terminated",
            });
        }
        people
    }
}

/// Okta's user statuses (the `UserStatus` enum of the management API).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UserStatus {
    Staged,
    Provisioned,
    Active,
    Recovery,
    PasswordExpired,
    LockedOut,
    Suspended,
    Deprovisioned,
}

impl UserStatus {
    pub const ALL: [UserStatus; 8] = [
        UserStatus::Staged,
        UserStatus::Provisioned,
        UserStatus::Active,
        UserStatus::Recovery,
        UserStatus::PasswordExpired,
        UserStatus::LockedOut,
        UserStatus::Suspended,
        UserStatus::Deprovisioned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Staged => "STAGED",
            UserStatus::Provisioned => "PROVISIONED",
            UserStatus::Active => "ACTIVE",
            UserStatus::Recovery => "RECOVERY",
            UserStatus::PasswordExpired => "PASSWORD_EXPIRED",
            UserStatus::LockedOut => "LOCKED_OUT",
            UserStatus::Suspended => "SUSPENDED",
            UserStatus::Deprovisioned => "DEPROVISIONED",
        }
    }

    /// STAGED and PROVISIONED users were never activated, so they never signed in (the spec's
    /// `ListUsersSearchResponse` example: both with `activated: null`, `lastLogin: null`).
    fn ever_active(self) -> bool {
        !matches!(self, UserStatus::Staged | UserStatus::Provisioned)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UserKind {
    Person,
    OktaOnly,
    Service,
}

/// One Okta user. Times are epoch milliseconds.
#[derive(Debug)]
pub(crate) struct UserRec {
    pub id: String,
    pub kind: UserKind,
    pub status: UserStatus,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub employee_number: Option<String>,
    pub department: Option<String>,
    pub manager: Option<usize>,
    pub user_type: Option<String>,
    pub slack_user_id: Option<String>,
    pub created: i64,
    pub activated: Option<i64>,
    pub status_changed: Option<i64>,
    pub password_changed: Option<i64>,
    /// Successful sign-ins before the simulated history: `lastLogin` can be older than every
    /// event the System Log holds.
    pub login_before_history: Option<i64>,
    /// Successful `user.session.start` times, ascending.
    pub logins: Vec<i64>,
}

/// One app instance (an `AppInstance` target of `user.authentication.sso`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppInstance {
    pub id: String,
    pub label: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EventKind {
    SessionStart,
    Sso,
    LifecycleCreate,
    LifecycleSuspend,
    LifecycleDeactivate,
    AccountLock,
}

impl EventKind {
    pub(crate) fn event_type(self) -> &'static str {
        match self {
            EventKind::SessionStart => "user.session.start",
            EventKind::Sso => "user.authentication.sso",
            EventKind::LifecycleCreate => "user.lifecycle.create",
            EventKind::LifecycleSuspend => "user.lifecycle.suspend",
            EventKind::LifecycleDeactivate => "user.lifecycle.deactivate",
            EventKind::AccountLock => "user.account.lock",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Actor {
    User(u32),
    /// Okta itself: `{"type":"SystemPrincipal","alternateId":"system@okta.com",
    /// "displayName":"Okta System"}` in recorded System Log events (third-party fixtures, e.g.
    /// SEKOIA-IO's Okta connector tests; Okta's docs only say an actor can be "the user, app,
    /// client, or other entity").
    System,
}

/// One System Log event. Times are epoch milliseconds.
#[derive(Clone, Debug)]
pub(crate) struct Event {
    pub published: i64,
    /// When the event became readable. Equal to `published` plus a small delay, or minutes
    /// later for a late event.
    pub persisted: i64,
    pub kind: EventKind,
    pub actor: Actor,
    pub target_user: Option<u32>,
    pub app: Option<u16>,
    /// `outcome.result` FAILURE (a failed sign-in); otherwise SUCCESS.
    pub failure: bool,
    pub salt: u64,
}

impl Event {
    pub(crate) fn uuid(&self) -> String {
        uuid_like(self.salt, mix64(self.salt ^ 0x55))
    }
}

/// The generated organisation. Immutable once built.
pub struct OktaOrg {
    spec: OktaOrgSpec,
    pub(crate) users: Vec<UserRec>,
    /// Positions in `users`, in listing order (by id).
    pub(crate) by_id: Vec<usize>,
    pub(crate) apps: Vec<AppInstance>,
    /// Sorted by (`published`, `salt`): the order of bounded requests.
    pub(crate) events: Vec<Event>,
    /// Indices into `events` sorted by (`persisted`, index): the order of polling requests.
    pub(crate) by_persisted: Vec<u32>,
    pub(crate) system_id: String,
}

impl std::fmt::Debug for OktaOrg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OktaOrg")
            .field("seed", &self.spec.seed)
            .field("users", &self.users.len())
            .field("events", &self.events.len())
            .finish_non_exhaustive()
    }
}

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;

// Tags keep the hash streams of different facts independent.
const T_STATUS: u64 = 1;
const T_PROFILE: u64 = 2;
const T_CREATED: u64 = 3;
const T_STATUS_DAY: u64 = 4;
const T_CUTOFF: u64 = 5;
const T_DAY: u64 = 6;
const T_TIME: u64 = 7;
const T_SSO: u64 = 8;
const T_LATE: u64 = 9;
const T_APPS: u64 = 10;
const T_FAIL: u64 = 11;
const T_ID: u64 = 12;
const T_PWD: u64 = 13;

const OKTA_ONLY_FIRST: [&str; 8] = ["Ada", "Grace", "Linus", "Barbara", "Ken", "Radia", "Dennis", "Frances"];
const OKTA_ONLY_LAST: [&str; 8] = ["Quill", "Rook", "Vale", "Marsh", "Thorne", "Pike", "Ash", "Wren"];
const SERVICE_NAMES: [&str; 4] = ["provisioning", "hr-sync", "backup", "siem-export"];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Profile {
    Daily,
    Occasional,
    Dormant,
    Never,
}

impl OktaOrg {
    pub fn generate(spec: &OktaOrgSpec) -> OktaOrg {
        let seed = spec.seed;
        let start_day = spec.today.checked_sub_days(Days::new(u64::from(spec.history_days))).unwrap_or(spec.today);
        let start = start_day.and_hms_opt(0, 0, 0).map_or(0, |t| t.and_utc().timestamp_millis());
        let history = i64::from(spec.history_days);
        let end = start + (history + 1) * DAY_MS;

        let mut apps = vec![AppInstance {
            id: format!("0oa{}", base62(mix(seed, 0, T_APPS), 17)),
            label: spec.slack_app_label.clone(),
        }];
        for (k, label) in spec.other_apps.iter().enumerate() {
            apps.push(AppInstance {
                id: format!("0oa{}", base62(mix(seed, k as u64 + 1, T_APPS), 17)),
                label: label.clone(),
            });
        }

        // The user list: people, then Okta-only users, then service accounts.
        struct Draft {
            kind: UserKind,
            first: String,
            last: String,
            email: String,
            employee_number: Option<String>,
            department: Option<String>,
            manager_email: Option<String>,
            user_type: Option<String>,
            slack_user_id: Option<String>,
            status: UserStatus,
        }
        let mut drafts = Vec::new();
        for (i, p) in spec.people.iter().enumerate() {
            let r = unit(mix(seed, i as u64, T_STATUS));
            let status = if p.left {
                if r < 0.7 { UserStatus::Deprovisioned } else { UserStatus::Suspended }
            } else if r < 0.03 {
                UserStatus::Staged
            } else if r < 0.06 {
                UserStatus::Provisioned
            } else if r < 0.08 {
                UserStatus::Recovery
            } else if r < 0.11 {
                UserStatus::PasswordExpired
            } else if r < 0.13 {
                UserStatus::LockedOut
            } else if r < 0.15 {
                UserStatus::Suspended
            } else {
                UserStatus::Active
            };
            drafts.push(Draft {
                kind: UserKind::Person,
                first: p.first_name.clone(),
                last: p.last_name.clone(),
                email: p.email.clone(),
                employee_number: p.employee_number.clone(),
                department: p.department.clone(),
                manager_email: p.manager_email.clone(),
                user_type: p.user_type.clone(),
                slack_user_id: p.slack_user_id.clone(),
                status,
            });
        }
        for k in 0..spec.okta_only_users {
            let first = OKTA_ONLY_FIRST[k % 8];
            let last = OKTA_ONLY_LAST[(k / 8) % 8];
            let round = k / 64;
            let local = if round == 0 {
                format!("{}.{}", first.to_ascii_lowercase(), last.to_ascii_lowercase())
            } else {
                format!("{}.{}{round}", first.to_ascii_lowercase(), last.to_ascii_lowercase())
            };
            drafts.push(Draft {
                kind: UserKind::OktaOnly,
                first: first.to_owned(),
                last: last.to_owned(),
                email: format!("{local}@{}", spec.email_domain),
                employee_number: None,
                department: Some("IT".to_owned()),
                manager_email: None,
                user_type: Some("contractor".to_owned()),
                slack_user_id: None,
                status: UserStatus::ALL[k % 8],
            });
        }
        for k in 0..spec.service_accounts {
            let name = SERVICE_NAMES[k % SERVICE_NAMES.len()];
            let name = if k < SERVICE_NAMES.len() { name.to_owned() } else { format!("{name}{k}") };
            drafts.push(Draft {
                kind: UserKind::Service,
                first: "Service".to_owned(),
                last: name.clone(),
                email: format!("svc-{name}@{}", spec.email_domain),
                employee_number: None,
                department: None,
                manager_email: None,
                user_type: Some("service".to_owned()),
                slack_user_id: None,
                status: UserStatus::Active,
            });
        }
        let pos_by_email: HashMap<String, usize> =
            drafts.iter().enumerate().map(|(i, d)| (d.email.to_ascii_lowercase(), i)).collect();
        let service_positions: Vec<usize> =
            drafts.iter().enumerate().filter(|(_, d)| d.kind == UserKind::Service).map(|(i, _)| i).collect();

        let mut users = Vec::with_capacity(drafts.len());
        let mut events = Vec::new();
        let late = |salt: u64, published: i64| -> i64 {
            // Okta: bounded requests "Not all events for the specified time range may be present
            // — events may be delayed. Such delays are rare but possible"; polling requests are
            // "time filtered by their internal 'persistence time' to avoid skipping records due
            // to system delays" (developer.okta.com System Log API, "Request types"). A rare
            // share of events is persisted minutes late; the rest within two seconds.
            let h = mix(seed, salt, T_LATE);
            if unit(h) < spec.late_fraction && spec.late_max_secs > 0 {
                published + 60_000 + below(mix64(h), u64::from(spec.late_max_secs) * 1000) as i64
            } else {
                published + below(mix64(h), 2_000) as i64
            }
        };
        for (i, d) in drafts.iter().enumerate() {
            let iu = i as u64;
            let h = |tag: u64| mix(seed, iu, tag);
            let id = format!("00u{}", base62(h(T_ID), 17));
            // Created before the history for most, during it for 15% of people.
            let created = if d.kind == UserKind::Person && unit(h(T_CREATED)) < 0.15 && history > 1 {
                start + below(h(T_CREATED + 100), (history as u64 - 1) * DAY_MS as u64) as i64
            } else {
                start - DAY_MS - below(h(T_CREATED + 100), 700 * DAY_MS as u64) as i64
            };
            let ever_active = d.status.ever_active();
            let activated = ever_active.then_some(created + HOUR_MS);
            // The day the status last changed (suspension, deprovisioning, lock, ...).
            let status_changed = match d.status {
                UserStatus::Staged | UserStatus::Provisioned => None,
                UserStatus::Active => activated,
                _ => {
                    let lo = ((created - start) / DAY_MS + 2).max(0);
                    let span = (history - lo).max(1) as u64;
                    let day = lo + below(h(T_STATUS_DAY), span) as i64;
                    Some(
                        (start + day * DAY_MS + 10 * HOUR_MS + below(h(T_STATUS_DAY + 100), 8 * HOUR_MS as u64) as i64)
                            .max(created + HOUR_MS),
                    )
                }
            };
            let profile = if !ever_active || d.kind == UserKind::Service {
                Profile::Never
            } else {
                let r = unit(h(T_PROFILE));
                if r < 0.55 {
                    Profile::Daily
                } else if r < 0.75 {
                    Profile::Occasional
                } else if r < 0.92 {
                    Profile::Dormant
                } else {
                    Profile::Never
                }
            };
            // Active days: from creation to the status change (or today), cut short for dormant
            // people (who may have stopped before the history began).
            let first_day = ((created - start) / DAY_MS + 1).max(0);
            let mut last_day = match d.status {
                UserStatus::Active => history,
                _ => status_changed.map_or(history, |t| (t - start) / DAY_MS - 1),
            };
            let mut login_before_history = None;
            if profile == Profile::Dormant {
                let cutoff = history - 20 - below(h(T_CUTOFF), history as u64) as i64;
                last_day = last_day.min(cutoff);
                if cutoff < 0 && created < start - 30 * DAY_MS {
                    let t = start - below(h(T_CUTOFF + 100), 200 * DAY_MS as u64) as i64 - HOUR_MS;
                    login_before_history = Some(t.max(created + 2 * HOUR_MS));
                }
            }
            let assigned: Vec<u16> = (0..apps.len() as u16)
                .filter(|&a| {
                    if a == 0 {
                        d.slack_user_id.is_some()
                    } else {
                        d.kind != UserKind::Service && unit(mix(seed, iu, T_APPS + 10 + u64::from(a))) < 0.5
                    }
                })
                .collect();
            let mut logins = Vec::new();
            if profile != Profile::Never {
                for day in first_day..=last_day {
                    let dh = mix(seed, iu, T_DAY ^ ((day as u64) << 8));
                    let weekday = start_day
                        .checked_add_days(Days::new(day as u64))
                        .map_or(0, |d| d.weekday().num_days_from_monday());
                    let p = match profile {
                        Profile::Daily if weekday < 5 => 0.9,
                        Profile::Daily => 0.1,
                        Profile::Occasional => 0.15,
                        _ => 0.5,
                    };
                    // Dormant people's last possible day is a definite active day.
                    if unit(dh) >= p && !(profile == Profile::Dormant && day == last_day) {
                        continue;
                    }
                    let t = start + day * DAY_MS + 7 * HOUR_MS + below(mix(dh, 1, T_TIME), 12 * HOUR_MS as u64) as i64;
                    if unit(mix(dh, 2, T_FAIL)) < 0.05 {
                        let salt = mix(dh, 3, T_FAIL);
                        events.push(Event {
                            published: t - 30_000,
                            persisted: late(salt, t - 30_000),
                            kind: EventKind::SessionStart,
                            actor: Actor::User(i as u32),
                            target_user: None,
                            app: None,
                            failure: true,
                            salt,
                        });
                    }
                    let salt = mix(dh, 4, T_TIME);
                    events.push(Event {
                        published: t,
                        persisted: late(salt, t),
                        kind: EventKind::SessionStart,
                        actor: Actor::User(i as u32),
                        target_user: None,
                        app: None,
                        failure: false,
                        salt,
                    });
                    logins.push(t);
                    for &a in &assigned {
                        let sh = mix(dh, 5 + u64::from(a), T_SSO);
                        if unit(sh) < 0.5 {
                            let ts = t + 60_000 + below(mix64(sh), 3 * HOUR_MS as u64) as i64;
                            if ts < end {
                                events.push(Event {
                                    published: ts,
                                    persisted: late(mix64(sh ^ 7), ts),
                                    kind: EventKind::Sso,
                                    actor: Actor::User(i as u32),
                                    target_user: None,
                                    app: Some(a),
                                    failure: false,
                                    salt: mix64(sh ^ 7),
                                });
                            }
                        }
                    }
                }
            }
            // Lifecycle events Okta records about the user itself, by a service account
            // (creation through the API) or by Okta (suspension, deactivation, lock).
            if created >= start && !service_positions.is_empty() {
                let by = service_positions[below(h(T_CREATED + 200), service_positions.len() as u64) as usize];
                let salt = h(T_CREATED + 300);
                events.push(Event {
                    published: created,
                    persisted: late(salt, created),
                    kind: EventKind::LifecycleCreate,
                    actor: Actor::User(by as u32),
                    target_user: Some(i as u32),
                    app: None,
                    failure: false,
                    salt,
                });
            }
            let lifecycle = match d.status {
                UserStatus::Suspended => Some(EventKind::LifecycleSuspend),
                UserStatus::Deprovisioned => Some(EventKind::LifecycleDeactivate),
                UserStatus::LockedOut => Some(EventKind::AccountLock),
                _ => None,
            };
            if let (Some(kind), Some(t)) = (lifecycle, status_changed)
                && t >= start
            {
                let salt = h(T_STATUS_DAY + 300);
                events.push(Event {
                    published: t,
                    persisted: late(salt, t),
                    kind,
                    actor: Actor::System,
                    target_user: Some(i as u32),
                    app: None,
                    failure: false,
                    salt,
                });
            }
            let password_changed = ever_active.then(|| created + HOUR_MS + below(h(T_PWD), 30 * DAY_MS as u64) as i64);
            users.push(UserRec {
                id,
                kind: d.kind,
                status: d.status,
                first_name: d.first.clone(),
                last_name: d.last.clone(),
                email: d.email.clone(),
                employee_number: d.employee_number.clone(),
                department: d.department.clone(),
                manager: d.manager_email.as_ref().and_then(|m| pos_by_email.get(&m.to_ascii_lowercase()).copied()),
                user_type: d.user_type.clone(),
                slack_user_id: d.slack_user_id.clone(),
                created,
                activated,
                status_changed,
                password_changed,
                login_before_history,
                logins,
            });
        }
        events.sort_by_key(|e| (e.published, e.salt));
        let mut by_persisted: Vec<u32> = (0..events.len() as u32).collect();
        by_persisted.sort_by_key(|&i| (events[i as usize].persisted, i));
        let mut by_id: Vec<usize> = (0..users.len()).collect();
        by_id.sort_by(|&a, &b| users[a].id.cmp(&users[b].id));
        OktaOrg {
            system_id: format!("0oa{}", base62(mix(seed, 99, T_APPS), 17)),
            spec: spec.clone(),
            users,
            by_id,
            apps,
            events,
            by_persisted,
        }
    }

    pub fn spec(&self) -> &OktaOrgSpec {
        &self.spec
    }

    pub fn apps(&self) -> &[AppInstance] {
        &self.apps
    }

    /// The Slack app instance (the first app).
    pub fn slack_app(&self) -> &AppInstance {
        &self.apps[0]
    }

    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    pub fn event_count(&self) -> usize {
        self.events.len()
    }

    /// `lastLogin` as the Users API shows it at `now_ms`: the last successful sign-in so far.
    pub(crate) fn last_login(&self, pos: usize, now_ms: i64) -> Option<i64> {
        let u = &self.users[pos];
        let n = u.logins.partition_point(|&t| t <= now_ms);
        if n > 0 { Some(u.logins[n - 1]) } else { u.login_before_history.filter(|&t| t <= now_ms) }
    }

    /// The status as of `now_ms`: a user whose status changed later is still ACTIVE then
    /// (statuses other than STAGED and PROVISIONED follow an activation).
    pub(crate) fn status_at(&self, pos: usize, now_ms: i64) -> UserStatus {
        let u = &self.users[pos];
        match u.status_changed {
            Some(t) if t > now_ms && u.status.ever_active() && u.status != UserStatus::Active => UserStatus::Active,
            _ => u.status,
        }
    }

    /// Users that exist at `now_ms`.
    pub(crate) fn exists_at(&self, pos: usize, now_ms: i64) -> bool {
        self.users[pos].created <= now_ms
    }

    /// Ground truth for incremental reads: every System Log event published in `[since,
    /// until)` (epoch milliseconds), in `published` order, with when it became readable — what
    /// a collector must end up with once every one of them is persisted, and which of them were
    /// late.
    pub fn log_events(&self, since_ms: i64, until_ms: i64) -> Vec<OktaTruthEvent> {
        let ts = |ms: i64| DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default();
        let lo = self.events.partition_point(|e| e.published < since_ms);
        let hi = self.events.partition_point(|e| e.published < until_ms);
        self.events[lo..hi.max(lo)]
            .iter()
            .map(|e| OktaTruthEvent {
                uuid: e.uuid(),
                event_type: e.kind.event_type().to_owned(),
                published: ts(e.published),
                persisted: ts(e.persisted),
                actor_id: match e.actor {
                    Actor::User(u) => self.users[u as usize].id.clone(),
                    Actor::System => self.system_id.clone(),
                },
                app_id: e.app.map(|a| self.apps[usize::from(a)].id.clone()),
                success: !e.failure,
            })
            .collect()
    }

    /// The ground truth over the System Log events published in `[since, as_of]` (pass `as_of`
    /// minus 90 days for what a full System Log backfill can see), with every user as of
    /// `as_of`.
    pub fn ground_truth(&self, as_of: DateTime<Utc>, since: Option<DateTime<Utc>>) -> OktaGroundTruth {
        let to = as_of.timestamp_millis();
        let from = since.map_or(i64::MIN, |s| s.timestamp_millis());
        let mut last_session: HashMap<u32, i64> = HashMap::new();
        let mut last_sso: BTreeMap<(u32, u16), i64> = BTreeMap::new();
        for e in self.events.iter().filter(|e| e.published >= from && e.published <= to) {
            match (e.kind, e.actor, e.failure) {
                (EventKind::SessionStart, Actor::User(u), false) => {
                    let t = last_session.entry(u).or_insert(e.published);
                    *t = (*t).max(e.published);
                }
                (EventKind::Sso, Actor::User(u), _) => {
                    if let Some(a) = e.app {
                        let t = last_sso.entry((u, a)).or_insert(e.published);
                        *t = (*t).max(e.published);
                    }
                }
                _ => {}
            }
        }
        let ts = |ms: i64| DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default();
        let users = self
            .by_id
            .iter()
            .filter(|&&p| self.exists_at(p, to))
            .map(|&p| {
                let u = &self.users[p];
                OktaTruthUser {
                    id: u.id.clone(),
                    login: u.email.clone(),
                    email: u.email.clone(),
                    status: self.status_at(p, to),
                    kind: match u.kind {
                        UserKind::Person => "person",
                        UserKind::OktaOnly => "okta_only",
                        UserKind::Service => "service",
                    }
                    .to_owned(),
                    slack_user_id: u.slack_user_id.clone(),
                    last_login: self.last_login(p, to).map(ts),
                    last_session_start: last_session.get(&(p as u32)).copied().map(ts),
                }
            })
            .collect();
        let sso = last_sso
            .iter()
            .map(|(&(u, a), &t)| SsoTruth {
                user_id: self.users[u as usize].id.clone(),
                app_id: self.apps[a as usize].id.clone(),
                app_label: self.apps[a as usize].label.clone(),
                last_sso: ts(t),
            })
            .collect();
        let mut slack_sso = BTreeMap::new();
        for (&(u, a), &t) in &last_sso {
            let user = &self.users[u as usize];
            if a == 0 {
                slack_sso.insert(
                    user.email.to_ascii_lowercase(),
                    SlackSsoTruth {
                        slack_user_id: user.slack_user_id.clone(),
                        okta_user_id: user.id.clone(),
                        last_sso: ts(t),
                    },
                );
            }
        }
        OktaGroundTruth { as_of, since, apps: self.apps.clone(), users, sso, slack_sso }
    }
}

/// What a correct Okta collection must find.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OktaGroundTruth {
    pub as_of: DateTime<Utc>,
    /// Events before this are not counted (the System Log keeps 90 days).
    pub since: Option<DateTime<Utc>>,
    pub apps: Vec<AppInstance>,
    /// Every user existing at `as_of`, in listing order (by id).
    pub users: Vec<OktaTruthUser>,
    /// Per (user, app instance) the last `user.authentication.sso` in the window.
    pub sso: Vec<SsoTruth>,
    /// Lower-cased email of the Okta user → the last SSO into the Slack app instance in the
    /// window: Slack evidence only Okta holds.
    pub slack_sso: BTreeMap<String, SlackSsoTruth>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OktaTruthUser {
    pub id: String,
    pub login: String,
    pub email: String,
    pub status: UserStatus,
    /// "person" | "okta_only" | "service"
    pub kind: String,
    pub slack_user_id: Option<String>,
    /// The Users API's `lastLogin` at `as_of` (may predate the window, or the history).
    pub last_login: Option<DateTime<Utc>>,
    /// The last successful `user.session.start` published in the window.
    pub last_session_start: Option<DateTime<Utc>>,
}

/// One System Log event as generated (see [`OktaOrg::log_events`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OktaTruthEvent {
    pub uuid: String,
    pub event_type: String,
    pub published: DateTime<Utc>,
    /// When a read could first see it; later than `published` by minutes for a late event.
    pub persisted: DateTime<Utc>,
    pub actor_id: String,
    /// The AppInstance of an SSO.
    pub app_id: Option<String>,
    /// `outcome.result` SUCCESS.
    pub success: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SsoTruth {
    pub user_id: String,
    pub app_id: String,
    pub app_label: String,
    pub last_sso: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SlackSsoTruth {
    /// The Slack account of the person, when the HR record links one.
    pub slack_user_id: Option<String>,
    pub okta_user_id: String,
    pub last_sso: DateTime<Utc>,
}

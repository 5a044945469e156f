//! Serde models of the Slack answers the collectors read (`users.list` members and
//! `team.accessLogs` logins), lenient where Slack is loose: profile fields may be missing, null
//! or empty, booleans may be absent, and numbers and strings are not always the type documented.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A `users.list` page.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct UsersPage {
    #[serde(default, deserialize_with = "lenient::vec")]
    pub members: Vec<User>,
    #[serde(default, deserialize_with = "lenient::object")]
    pub response_metadata: Option<ResponseMetadata>,
}

impl UsersPage {
    /// The cursor of the next page; `None` at the end (empty, null or absent).
    pub fn next_cursor(&self) -> Option<&str> {
        self.response_metadata.as_ref().and_then(|m| m.next_cursor.as_deref())
    }
}

/// `response_metadata` of cursor-paged answers.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ResponseMetadata {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub next_cursor: Option<String>,
}

/// A user object (only the fields the pipeline stores). Every optional text field is `None`
/// when Slack leaves it out, sends null or sends an empty string.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct User {
    #[serde(deserialize_with = "lenient::string")]
    pub id: String,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub team_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub real_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::flag")]
    pub deleted: bool,
    #[serde(default, deserialize_with = "lenient::flag")]
    pub is_admin: bool,
    #[serde(default, deserialize_with = "lenient::flag")]
    pub is_owner: bool,
    #[serde(default, deserialize_with = "lenient::flag")]
    pub is_primary_owner: bool,
    #[serde(default, deserialize_with = "lenient::flag")]
    pub is_restricted: bool,
    #[serde(default, deserialize_with = "lenient::flag")]
    pub is_ultra_restricted: bool,
    #[serde(default, deserialize_with = "lenient::flag")]
    pub is_bot: bool,
    #[serde(default, deserialize_with = "lenient::flag")]
    pub is_app_user: bool,
    /// A workflow's bot user (real answers carry it: java-slack-sdk `users.list.json`,
    /// `users.info.json` samples); a service account even when `is_bot` is false.
    #[serde(default, deserialize_with = "lenient::flag")]
    pub is_workflow_bot: bool,
    /// A connector's bot user (`users.info.json` sample); a service account too.
    #[serde(default, deserialize_with = "lenient::flag")]
    pub is_connector_bot: bool,
    #[serde(default, deserialize_with = "lenient::flag")]
    pub is_invited_user: bool,
    #[serde(default, deserialize_with = "lenient::flag")]
    pub is_stranger: bool,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub tz: Option<String>,
    /// Only visible to admins and owners; `None` otherwise.
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub has_2fa: Option<bool>,
    /// Epoch seconds of the last change.
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub updated: Option<i64>,
    #[serde(default, deserialize_with = "lenient::object")]
    pub profile: Option<Profile>,
    /// Enterprise Grid only: the organisation and every workspace the user belongs to.
    #[serde(default, deserialize_with = "lenient::object")]
    pub enterprise_user: Option<EnterpriseUser>,
}

/// `user.enterprise_user` on Enterprise Grid.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EnterpriseUser {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub enterprise_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::strings")]
    pub teams: Vec<String>,
}

impl User {
    fn profile_field(&self, f: impl Fn(&Profile) -> Option<&String>) -> Option<&str> {
        self.profile.as_ref().and_then(f).map(String::as_str)
    }

    /// `real_name`, falling back to `profile.real_name`.
    pub fn real_name(&self) -> Option<&str> {
        self.real_name.as_deref().or_else(|| self.profile_field(|p| p.real_name.as_ref()))
    }

    pub fn display_name(&self) -> Option<&str> {
        self.profile_field(|p| p.display_name.as_ref())
    }

    /// Absent unless the token has `users:read.email`.
    pub fn email(&self) -> Option<&str> {
        self.profile_field(|p| p.email.as_ref())
    }

    pub fn title(&self) -> Option<&str> {
        self.profile_field(|p| p.title.as_ref())
    }

    pub fn bot_id(&self) -> Option<&str> {
        self.profile_field(|p| p.bot_id.as_ref())
    }
}

/// `user.profile` (the fields the pipeline stores).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Profile {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub real_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub display_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub title: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub bot_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub team: Option<String>,
}

/// A `team.accessLogs` page (classic `count`/`page` paging).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AccessLogsPage {
    #[serde(default, deserialize_with = "lenient::vec")]
    pub logins: Vec<Login>,
    #[serde(default, deserialize_with = "lenient::object")]
    pub paging: Option<Paging>,
    /// Cursor mode (`limit` + `cursor`): the next page's cursor.
    #[serde(default, deserialize_with = "lenient::object")]
    pub response_metadata: Option<ResponseMetadata>,
}

/// Classic paging block.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct Paging {
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub count: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub total: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub page: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub pages: Option<i64>,
}

/// One access-log entry: a (user, IP, user agent) combination with its first and last access.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Login {
    #[serde(deserialize_with = "lenient::string")]
    pub user_id: String,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub username: Option<String>,
    /// Epoch seconds.
    #[serde(deserialize_with = "lenient::i64")]
    pub date_first: i64,
    /// Epoch seconds.
    #[serde(deserialize_with = "lenient::i64")]
    pub date_last: i64,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub count: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub ip: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub user_agent: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub isp: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub country: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub region: Option<String>,
}

/// Deserializers that accept what Slack actually sends. Each goes through `serde_json::Value`
/// for one field, which is cheap next to the HTTP round trip and keeps the rules readable.
pub(crate) mod lenient {
    use super::*;
    use serde::de::{DeserializeOwned, Error};

    fn text(v: Value) -> Option<String> {
        match v {
            Value::String(s) if s.trim().is_empty() => None,
            Value::String(s) => Some(s),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Null | Value::Array(_) | Value::Object(_) => None,
        }
    }

    fn integer(v: &Value) -> Option<i64> {
        match v {
            Value::Number(n) => n.as_i64().or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64)),
            Value::String(s) => {
                let s = s.trim();
                s.parse::<i64>().ok().or_else(|| s.parse::<f64>().ok().filter(|f| f.is_finite()).map(|f| f as i64))
            }
            _ => None,
        }
    }

    fn boolean(v: &Value) -> Option<bool> {
        match v {
            Value::Bool(b) => Some(*b),
            Value::Number(n) => n.as_f64().map(|f| f != 0.0),
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Some(true),
                "false" | "0" | "no" | "" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(Option::<Value>::deserialize(d)?.and_then(text))
    }

    pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        let v = Value::deserialize(d)?;
        let shown = v.to_string();
        text(v).ok_or_else(|| D::Error::custom(format!("expected a non-empty string, got {shown}")))
    }

    pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        Ok(Option::<Value>::deserialize(d)?.as_ref().and_then(integer))
    }

    pub fn i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let v = Value::deserialize(d)?;
        integer(&v).ok_or_else(|| D::Error::custom(format!("expected an integer, got {v}")))
    }

    pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        Ok(Option::<Value>::deserialize(d)?.as_ref().and_then(boolean))
    }

    /// Absent, null or unreadable flags are false: Slack omits flags that do not apply
    /// (`is_invited_user` on members who signed in, for one).
    pub fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        Ok(opt_bool(d)?.unwrap_or(false))
    }

    /// An object field; anything that is not an object (null, "", []) counts as absent.
    pub fn object<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: DeserializeOwned,
    {
        match Option::<Value>::deserialize(d)? {
            Some(v @ Value::Object(_)) => T::deserialize(v).map(Some).map_err(D::Error::custom),
            _ => Ok(None),
        }
    }

    /// A list of strings; null counts as empty, and non-text or empty elements are dropped.
    pub fn strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        Ok(match Option::<Value>::deserialize(d)? {
            Some(Value::Array(items)) => items.into_iter().filter_map(text).collect(),
            _ => Vec::new(),
        })
    }

    /// A list field; null counts as empty.
    pub fn vec<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `users.list` sample from the reference (slack-api.md §1).
    const USERS_SAMPLE: &str = r#"{"ok":true,
 "members":[{"id":"W012A3CDE","team_id":"T012AB3C4","name":"spengler","deleted":false,
   "real_name":"Egon Spengler","tz":"America/Los_Angeles","tz_label":"Pacific Daylight Time","tz_offset":-25200,
   "profile":{"real_name":"Egon Spengler","display_name":"spengler","email":"spengler@example.com","team":"T012AB3C4"},
   "is_admin":true,"is_owner":false,"is_primary_owner":false,"is_restricted":false,"is_ultra_restricted":false,
   "is_bot":false,"is_app_user":false,"updated":1502138686,"has_2fa":false}],
 "cache_ts":1498777272,
 "response_metadata":{"next_cursor":"dXNlcjpVMEc5V0ZYTlo="}}"#;

    /// The `team.accessLogs` sample from the reference (slack-api.md §2).
    const ACCESS_LOGS_SAMPLE: &str = r#"{"ok":true,
 "logins":[{"user_id":"U45678","username":"alice","date_first":1422922864,"date_last":1422922864,"count":1,
   "ip":"127.0.0.1","user_agent":"SlackWeb Mozilla/5.0 (Macintosh; …)","isp":"BigCo ISP","country":"US","region":"CA"}],
 "paging":{"count":100,"total":2,"page":1,"pages":1}}"#;

    #[test]
    fn users_sample() {
        let page: UsersPage = serde_json::from_str(USERS_SAMPLE).unwrap();
        assert_eq!(page.next_cursor(), Some("dXNlcjpVMEc5V0ZYTlo="));
        let u = &page.members[0];
        assert_eq!(u.id, "W012A3CDE");
        assert_eq!(u.team_id.as_deref(), Some("T012AB3C4"));
        assert_eq!(u.real_name(), Some("Egon Spengler"));
        assert_eq!(u.display_name(), Some("spengler"));
        assert_eq!(u.email(), Some("spengler@example.com"));
        assert!(u.is_admin && !u.is_owner && !u.deleted && !u.is_invited_user);
        assert_eq!(u.has_2fa, Some(false));
        assert_eq!(u.updated, Some(1_502_138_686));
        assert_eq!(u.tz.as_deref(), Some("America/Los_Angeles"));
    }

    #[test]
    fn users_quirks() {
        let page: UsersPage = serde_json::from_str(
            r#"{"ok":true,"members":[
                {"id":"USLACKBOT","name":"slackbot","is_bot":false,"profile":{"real_name":"Slackbot","email":null,"display_name":"","title":null}},
                {"id":"U2","profile":null,"deleted":"true","updated":"1700000000","has_2fa":null},
                {"id":"U3","profile":"","is_invited_user":1,"real_name":12345,"updated":1.7e9},
                {"id":"B4","is_bot":true,"profile":{"bot_id":"B0BOT","always_active":true}}
            ],"response_metadata":{"next_cursor":""}}"#,
        )
        .unwrap();
        assert_eq!(page.next_cursor(), None);
        let [bot, u2, u3, app] = &page.members[..] else { panic!("4 members") };
        assert_eq!(bot.real_name(), Some("Slackbot"));
        assert_eq!(bot.display_name(), None);
        assert_eq!(bot.email(), None);
        assert!(!bot.is_bot && !bot.is_invited_user);
        assert!(u2.profile.is_none() && u2.deleted);
        assert_eq!(u2.updated, Some(1_700_000_000));
        assert_eq!(u2.has_2fa, None);
        assert!(u3.profile.is_none() && u3.is_invited_user);
        assert_eq!(u3.real_name(), Some("12345"));
        assert_eq!(u3.updated, Some(1_700_000_000));
        assert_eq!(app.bot_id(), Some("B0BOT"));

        let page: UsersPage = serde_json::from_str(r#"{"ok":true,"members":null}"#).unwrap();
        assert!(page.members.is_empty() && page.next_cursor().is_none());
        let page: UsersPage = serde_json::from_str(r#"{"ok":true,"members":[],"response_metadata":{}}"#).unwrap();
        assert!(page.next_cursor().is_none());
    }

    #[test]
    fn a_member_without_id_is_an_error() {
        let err = serde_json::from_str::<UsersPage>(r#"{"members":[{"name":"x"}]}"#).unwrap_err();
        assert!(err.to_string().contains("id"), "{err}");
    }

    #[test]
    fn access_logs_sample() {
        let page: AccessLogsPage = serde_json::from_str(ACCESS_LOGS_SAMPLE).unwrap();
        assert_eq!(page.paging, Some(Paging { count: Some(100), total: Some(2), page: Some(1), pages: Some(1) }));
        let l = &page.logins[0];
        assert_eq!(l.user_id, "U45678");
        assert_eq!(l.username.as_deref(), Some("alice"));
        assert_eq!((l.date_first, l.date_last, l.count), (1_422_922_864, 1_422_922_864, Some(1)));
        assert_eq!(l.ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(l.isp.as_deref(), Some("BigCo ISP"));
        assert_eq!(l.country.as_deref(), Some("US"));
        assert_eq!(l.region.as_deref(), Some("CA"));
    }

    #[test]
    fn access_logs_quirks() {
        let page: AccessLogsPage = serde_json::from_str(
            r#"{"ok":true,"logins":[{"user_id":"U1","username":null,"date_first":"1422922864","date_last":1422922900,
                "count":"3","ip":null,"user_agent":"","isp":null,"country":null,"region":null}]}"#,
        )
        .unwrap();
        assert!(page.paging.is_none());
        let l = &page.logins[0];
        assert_eq!((l.date_first, l.date_last, l.count), (1_422_922_864, 1_422_922_900, Some(3)));
        assert!(l.username.is_none() && l.ip.is_none() && l.user_agent.is_none());
        assert!(serde_json::from_str::<AccessLogsPage>(r#"{"logins":[{"user_id":"U1","date_first":1}]}"#).is_err());
    }

    #[test]
    fn every_access_log_field_read_is_in_slacks_recorded_answer() {
        use crate::slack::contract::{TEXT, parse};
        let page: AccessLogsPage = parse("api__team.accessLogs.json");
        let l = &page.logins[0];
        assert_eq!((l.user_id.as_str(), l.username.as_deref()), ("U00000000", Some(TEXT)));
        assert_eq!((l.date_first, l.date_last, l.count), (12345, 12345, Some(12345)));
        for f in [&l.ip, &l.user_agent, &l.isp, &l.country, &l.region] {
            assert_eq!(f.as_deref(), Some(TEXT));
        }
        assert_eq!(page.paging.and_then(|p| p.pages), Some(12345));
        assert_eq!(page.response_metadata.and_then(|m| m.next_cursor).as_deref(), Some(TEXT));
    }
}

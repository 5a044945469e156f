//! Contract tests: every simulator answer validates against its operation's schema in Okta's
//! OpenAPI description, as extracted into `tests/contract/okta/okta-contract.json`
//! (`tests/contract/okta/extract.py`), and the validator rejects wrong answers.
//!
//! The validator covers the OpenAPI subset those schemas use: `$ref`, `allOf`, `type`,
//! `properties`, `required`, `enum`, `nullable`, `items`, `format: date-time` / `email`,
//! `minLength` / `maxLength`, `additionalProperties`. One rule is stricter than OpenAPI: an
//! object whose schema declares `properties` and no `additionalProperties` may carry no other
//! key, so a simulator cannot invent fields (as the Slack contract tests refuse keys the
//! samples lack).

use std::collections::HashSet;
use std::net::SocketAddr;

use serde_json::{Value, json};

use crate::{OktaOrgSpec, OktaSimConfig, OktaSimulator, RateLimits, RunningOktaSim};

pub(crate) const CONTRACT: &str = include_str!("../../tests/contract/okta/okta-contract.json");

pub(crate) struct Contract {
    doc: Value,
}

impl Contract {
    pub(crate) fn load() -> Contract {
        Contract { doc: serde_json::from_str(CONTRACT).unwrap_or(Value::Null) }
    }

    pub(crate) fn schema(&self, name: &str) -> Value {
        json!({"$ref": format!("#/components/schemas/{name}")})
    }

    /// The response schema of an operation for a status (`200`, `400`, `429`, …).
    pub(crate) fn response(&self, operation: &str, status: u16) -> Option<Value> {
        self.doc
            .pointer(&format!("/operations/{operation}/responses/{status}/schema"))
            .filter(|s| !s.is_null())
            .cloned()
    }

    pub(crate) fn parameter(&self, operation: &str, name: &str) -> Option<Value> {
        self.doc
            .pointer(&format!("/operations/{operation}/parameters"))?
            .as_array()?
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
    }

    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        match schema.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix("#/components/schemas/")) {
            Some(name) => self.doc.pointer(&format!("/schemas/{name}")).map_or(&Value::Null, |s| self.resolve(s)),
            None => schema,
        }
    }

    /// Every error found validating `value` against `schema`, with JSON paths.
    pub(crate) fn validate(&self, schema: &Value, value: &Value) -> Vec<String> {
        let mut errors = Vec::new();
        self.check(schema, value, "$", &mut errors);
        errors
    }

    fn nullable(&self, schema: &Value) -> bool {
        let s = self.resolve(schema);
        s.get("nullable") == Some(&Value::Bool(true))
            || s.get("allOf").and_then(Value::as_array).is_some_and(|all| all.iter().any(|p| self.nullable(p)))
    }

    /// Collects the property names an object may carry into `out`: Some(true) when any key is
    /// allowed, Some(false) when only those, None when the schema says nothing about keys.
    fn allowed(&self, schema: &Value, out: &mut HashSet<String>) -> Option<bool> {
        let s = self.resolve(schema);
        let mut verdict = match s.get("additionalProperties") {
            Some(Value::Bool(false)) => Some(false),
            Some(_) => Some(true),
            None => None,
        };
        if let Some(props) = s.get("properties").and_then(Value::as_object) {
            out.extend(props.keys().cloned());
            verdict = verdict.or(Some(false));
        }
        for part in s.get("allOf").and_then(Value::as_array).into_iter().flatten() {
            match self.allowed(part, out) {
                Some(true) => verdict = Some(true),
                Some(false) => verdict = verdict.or(Some(false)),
                None => {}
            }
        }
        verdict
    }

    fn check(&self, schema: &Value, v: &Value, path: &str, errors: &mut Vec<String>) {
        let s = self.resolve(schema);
        if s.is_null() {
            errors.push(format!("{path}: unresolvable schema {schema}"));
            return;
        }
        if v.is_null() {
            if !self.nullable(s) {
                errors.push(format!("{path}: null where the schema is not nullable"));
            }
            return;
        }
        if let Some(all) = s.get("allOf").and_then(Value::as_array) {
            for part in all {
                // Unknown keys are judged once, on the union of the parts below.
                let mut part = self.resolve(part).clone();
                if let Some(o) = part.as_object_mut() {
                    o.insert("additionalProperties".into(), Value::Bool(true));
                }
                self.check(&part, v, path, errors);
            }
        }
        if let Some(t) = s.get("type").and_then(Value::as_str) {
            let ok = match t {
                "string" => v.is_string(),
                "integer" => v.is_i64() || v.is_u64(),
                "number" => v.is_number(),
                "boolean" => v.is_boolean(),
                "object" => v.is_object(),
                "array" => v.is_array(),
                _ => true,
            };
            if !ok {
                errors.push(format!("{path}: expected {t}, got {v}"));
                return;
            }
        }
        if let Some(options) = s.get("enum").and_then(Value::as_array)
            && !options.contains(v)
        {
            errors.push(format!("{path}: {v} is not one of {}", Value::Array(options.clone())));
        }
        if let Some(text) = v.as_str() {
            match s.get("format").and_then(Value::as_str) {
                Some("date-time") if chrono::DateTime::parse_from_rfc3339(text).is_err() => {
                    errors.push(format!("{path}: {text:?} is not a date-time"));
                }
                Some("email") if !text.contains('@') => errors.push(format!("{path}: {text:?} is not an email")),
                _ => {}
            }
            let n = text.chars().count() as u64;
            if s.get("minLength").and_then(Value::as_u64).is_some_and(|m| n < m) {
                errors.push(format!("{path}: {text:?} is shorter than minLength"));
            }
            if s.get("maxLength").and_then(Value::as_u64).is_some_and(|m| n > m) {
                errors.push(format!("{path}: {text:?} is longer than maxLength"));
            }
        }
        if let Some(obj) = v.as_object() {
            let props = s.get("properties").and_then(Value::as_object);
            for (k, pv) in obj {
                if let Some(ps) = props.and_then(|p| p.get(k)) {
                    self.check(ps, pv, &format!("{path}.{k}"), errors);
                }
            }
            if let Some(required) = s.get("required").and_then(Value::as_array) {
                for r in required.iter().filter_map(Value::as_str) {
                    if !obj.contains_key(r) {
                        errors.push(format!("{path}: required {r} is missing"));
                    }
                }
            }
            let mut allowed = HashSet::new();
            if self.allowed(s, &mut allowed) == Some(false) {
                for k in obj.keys().filter(|k| !allowed.contains(*k)) {
                    errors.push(format!("{path}: {k} is not in the schema"));
                }
            }
        }
        if let (Some(items), Some(arr)) = (s.get("items"), v.as_array()) {
            for (i, item) in arr.iter().enumerate() {
                self.check(items, item, &format!("{path}[{i}]"), errors);
            }
        }
    }
}

pub(crate) fn test_spec(people: usize) -> OktaOrgSpec {
    let today = chrono::NaiveDate::from_ymd_opt(2026, 6, 30).unwrap_or_default();
    let slack = lastseen_slack_sim::Org::generate(&lastseen_slack_sim::OrgSpec::new(
        7,
        people,
        lastseen_slack_sim::Plan::BusinessPlus,
        today,
        120,
    ));
    OktaOrgSpec::from_slack(&slack, 11)
}

pub(crate) async fn start(config: OktaSimConfig) -> RunningOktaSim {
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
    match OktaSimulator::start(config, addr).await {
        Ok(sim) => sim,
        Err(e) => panic!("simulator: {e}"),
    }
}

/// GET with the full token: (status, every `link` header, JSON body).
pub(crate) async fn get(
    sim: &RunningOktaSim,
    url: &str,
    token: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let client = reqwest::Client::new();
    let mut req = client.get(url);
    if let Some(t) = token {
        req = req.header("Authorization", format!("SSWS {t}"));
    }
    let _ = sim;
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => panic!("GET {url}: {e}"),
    };
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.map(|b| serde_json::from_slice(&b).unwrap_or(Value::Null)).unwrap_or(Value::Null);
    (status, headers, body)
}

pub(crate) fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get_all("link")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.ends_with("rel=\"next\""))
        .and_then(|v| v.strip_prefix('<'))
        .and_then(|v| v.split_once('>'))
        .map(|(u, _)| u.to_owned())
}

fn assert_valid(contract: &Contract, schema: &Value, body: &Value, what: &str) {
    let errors = contract.validate(schema, body);
    assert!(errors.is_empty(), "{what} does not match Okta's schema:\n{}", errors.join("\n"));
}

#[test]
fn the_contract_file_has_both_operations_and_their_parameters() {
    let c = Contract::load();
    assert!(c.doc["provenance"]["source"].as_str().is_some_and(|s| s.contains("management-minimal.yaml")));
    for p in ["since", "until", "after", "filter", "q", "limit", "sortOrder"] {
        assert!(c.parameter("listLogEvents", p).is_some(), "listLogEvents {p}");
    }
    for p in ["search", "filter", "q", "after", "limit"] {
        assert!(c.parameter("listUsers", p).is_some(), "listUsers {p}");
    }
    // The defaults the simulator implements are the contract's.
    assert_eq!(c.parameter("listLogEvents", "limit").map(|p| p["schema"]["default"].clone()), Some(json!(100)));
    assert_eq!(c.parameter("listUsers", "limit").map(|p| p["schema"]["default"].clone()), Some(json!(200)));
    let statuses = c.doc.pointer("/schemas/UserStatus/enum").cloned().unwrap_or_default();
    let ours: Vec<Value> = crate::UserStatus::ALL.iter().map(|s| json!(s.as_str())).collect();
    let mut theirs: Vec<Value> = statuses.as_array().cloned().unwrap_or_default();
    theirs.sort_by_key(|v| v.to_string());
    let mut ours_sorted = ours.clone();
    ours_sorted.sort_by_key(|v| v.to_string());
    assert_eq!(ours_sorted, theirs, "the simulator's statuses are exactly UserStatus");
    assert!(c.response("listLogEvents", 200).is_some() && c.response("listUsers", 200).is_some());
}

#[test]
fn the_validator_rejects_wrong_answers() {
    let c = Contract::load();
    let user = json!({
        "id": "00u1", "status": "ACTIVE", "created": "2022-04-04T15:56:05.000Z", "lastLogin": null,
        "lastUpdated": "2022-05-05T18:15:44.000Z",
        "profile": {"login": "alice.smith@example.com", "email": "alice.smith@example.com", "firstName": "Alice"},
        "_links": {"self": {"href": "http://x/api/v1/users/00u1"}}
    });
    let schema = c.schema("User");
    assert_eq!(c.validate(&schema, &user), Vec::<String>::new(), "a correct user passes");
    let wrong = |f: &dyn Fn(&mut Value)| {
        let mut u = user.clone();
        f(&mut u);
        c.validate(&schema, &u)
    };
    assert!(!wrong(&|u| u["status"] = json!("GONE")).is_empty(), "enum");
    assert!(!wrong(&|u| u["created"] = json!("yesterday")).is_empty(), "date-time");
    assert!(!wrong(&|u| u["created"] = json!(null)).is_empty(), "not nullable");
    assert!(!wrong(&|u| u["profile"]["login"] = json!(5)).is_empty(), "type");
    assert!(!wrong(&|u| u["lastSeen"] = json!("x")).is_empty(), "unknown key");
    assert!(!wrong(&|u| u["_links"]["self"] = json!({"name": "x"})).is_empty(), "required href inside allOf");
    // Custom profile attributes are allowed: UserProfile has additionalProperties.
    assert!(wrong(&|u| u["profile"]["costCentre2"] = json!("x")).is_empty());
    let event = json!({"uuid": "u", "published": "2024-08-13T15:58:20.353Z", "eventType": "user.session.start",
        "severity": "INFO", "actor": {"id": "00u1", "type": "User"}, "target": [{"id": "0oa1", "type": "AppInstance"}]});
    let list = c.response("listLogEvents", 200).unwrap_or_default();
    assert!(c.validate(&list, &json!([event])).is_empty());
    let mut bad = event.clone();
    bad["target"] = json!({"id": "0oa1"});
    assert!(!c.validate(&list, &json!([bad])).is_empty(), "target must be an array");
    let mut bad = event.clone();
    bad["severity"] = json!("LOUD");
    assert!(!c.validate(&list, &json!([bad])).is_empty(), "severity enum through $ref");
    let mut bad = event;
    bad["outcome"] = json!({"result": "SUCCESS", "reason": null});
    assert!(!c.validate(&list, &json!([bad])).is_empty(), "outcome.reason is not nullable in the schema");
    assert!(!c.validate(&c.schema("Error"), &json!({"errorCode": 1})).is_empty());
}

#[tokio::test]
async fn every_users_page_and_every_logs_page_validates() {
    let c = Contract::load();
    let sim = start(OktaSimConfig::new(test_spec(80))).await;
    let token = sim.api_token().to_owned();
    let users_schema = c.response("listUsers", 200).unwrap_or_default();
    for first in [
        format!("{}/api/v1/users?limit=7", sim.org_url()),
        format!(
            "{}/api/v1/users?limit=9&filter={}",
            sim.org_url(),
            "status%20eq%20%22DEPROVISIONED%22%20or%20status%20eq%20%22STAGED%22"
        ),
    ] {
        let mut url = Some(first);
        let mut pages = 0;
        while let Some(u) = url {
            let (status, headers, body) = get(&sim, &u, Some(&token)).await;
            assert_eq!(status, 200, "{u}: {body}");
            assert_valid(&c, &users_schema, &body, &u);
            url = next_link(&headers);
            pages += 1;
        }
        assert!(pages > 1, "several pages");
    }
    let logs_schema = c.response("listLogEvents", 200).unwrap_or_default();
    let now = sim.now();
    let since = (now - chrono::Duration::days(30)).format("%Y-%m-%dT%H:%M:%SZ");
    let until = now.format("%Y-%m-%dT%H:%M:%SZ");
    let mut url = Some(format!("{}/api/v1/logs?since={since}&until={until}&limit=1000", sim.org_url()));
    let mut seen = 0;
    while let Some(u) = url {
        let (status, headers, body) = get(&sim, &u, Some(&token)).await;
        assert_eq!(status, 200, "{u}: {body}");
        assert_valid(&c, &logs_schema, &body, &u);
        seen += body.as_array().map_or(0, Vec::len);
        url = next_link(&headers);
    }
    assert!(seen > 1000, "the window has many events of every kind ({seen})");
    let (status, _, body) = get(&sim, &format!("{}/api/v1/logs?limit=50", sim.org_url()), Some(&token)).await;
    assert_eq!(status, 200);
    assert_valid(&c, &logs_schema, &body, "a polling page");
    sim.shutdown().await;
}

#[tokio::test]
async fn every_error_answer_validates_as_okta_error() {
    let c = Contract::load();
    let mut config = OktaSimConfig::new(test_spec(20));
    // Two users calls per window: the unauthenticated one counts too.
    config.rate_limits = RateLimits::enforced(2, 100, 3600);
    let sim = start(config).await;
    let token = sim.api_token().to_owned();
    let base = sim.org_url();
    let cases: Vec<(String, Option<String>, u16, &str)> = vec![
        (format!("{base}/api/v1/users"), None, 401, "E0000011"),
        (format!("{base}/api/v1/logs"), Some("00nope".to_owned()), 401, "E0000011"),
        (format!("{base}/api/v1/logs?until=yesterday"), Some(token.clone()), 400, "E0000001"),
        (
            format!("{base}/api/v1/logs?filter=published%20gt%20%222026-01-01T00:00:00Z%22"),
            Some(token.clone()),
            400,
            "E0000053",
        ),
        (format!("{base}/api/v1/logs"), Some(sim.logs_denied_token().to_owned()), 403, "E0000006"),
        (format!("{base}/api/v1/groups"), Some(token.clone()), 404, "E0000007"),
        (format!("{base}/api/v1/users?limit=2"), Some(token.clone()), 200, ""),
        (format!("{base}/api/v1/users?limit=2"), Some(token.clone()), 429, "E0000047"),
    ];
    for (url, tok, want, code) in cases {
        let (status, headers, body) = get(&sim, &url, tok.as_deref()).await;
        assert_eq!(status, want, "{url}: {body}");
        for h in ["x-rate-limit-limit", "x-rate-limit-remaining", "x-rate-limit-reset"] {
            assert!(headers.get(h).is_some(), "{url}: {h} on every answer");
        }
        if want == 200 {
            continue;
        }
        assert_eq!(body["errorCode"], code, "{url}: {body}");
        let op = if url.contains("/logs") { "listLogEvents" } else { "listUsers" };
        let schema = c.response(op, want).unwrap_or_else(|| c.schema("Error"));
        assert_valid(&c, &schema, &body, &url);
        assert_valid(&c, &c.schema("Error"), &body, &url);
        for key in ["errorCode", "errorSummary", "errorLink", "errorId", "errorCauses"] {
            assert!(body.get(key).is_some(), "{url}: {key}");
        }
    }
    sim.shutdown().await;
}

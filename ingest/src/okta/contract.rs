//! Every Okta field the models read exists in Okta's contract (`tests/contract/okta/`,
//! extracted from Okta's OpenAPI description) with the type the model expects; the models load
//! the shapes of the spec's own examples, nulls included.

use serde_json::{Value, json};

use super::models::{LogEvent, OktaUser};

const CONTRACT: &str = include_str!("../../../tests/contract/okta/okta-contract.json");

/// (schema, dotted path, JSON type, format, whether the model reads it as an `Option`).
const FIELDS_READ: &[(&str, &str, &str, Option<&str>, bool)] = &[
    ("User", "id", "string", None, false),
    ("User", "status", "string", None, false),
    ("User", "created", "string", Some("date-time"), false),
    ("User", "activated", "string", Some("date-time"), true),
    ("User", "lastLogin", "string", Some("date-time"), true),
    ("User", "statusChanged", "string", Some("date-time"), true),
    ("User", "lastUpdated", "string", Some("date-time"), true),
    ("User", "profile", "object", None, false),
    ("User", "profile.login", "string", None, true),
    ("User", "profile.email", "string", None, true),
    ("User", "profile.firstName", "string", None, true),
    ("User", "profile.lastName", "string", None, true),
    ("User", "profile.employeeNumber", "string", None, true),
    ("User", "profile.department", "string", None, true),
    ("User", "profile.manager", "string", None, true),
    ("User", "profile.managerId", "string", None, true),
    ("User", "profile.userType", "string", None, true),
    ("LogEvent", "uuid", "string", None, false),
    ("LogEvent", "published", "string", Some("date-time"), false),
    ("LogEvent", "eventType", "string", None, false),
    ("LogEvent", "actor", "object", None, true),
    ("LogEvent", "actor.id", "string", None, false),
    ("LogEvent", "actor.type", "string", None, true),
    ("LogEvent", "actor.alternateId", "string", None, true),
    ("LogEvent", "actor.displayName", "string", None, true),
    ("LogEvent", "target", "array", None, true),
    ("LogEvent", "target.id", "string", None, false),
    ("LogEvent", "target.type", "string", None, true),
    ("LogEvent", "target.alternateId", "string", None, true),
    ("LogEvent", "target.displayName", "string", None, true),
    ("LogEvent", "outcome", "object", None, true),
    ("LogEvent", "outcome.result", "string", None, true),
    ("LogEvent", "outcome.reason", "string", None, true),
    ("LogEvent", "client", "object", None, true),
    ("LogEvent", "client.ipAddress", "string", None, true),
    ("LogEvent", "client.device", "string", None, true),
    ("LogEvent", "client.userAgent", "object", None, true),
    ("LogEvent", "client.userAgent.rawUserAgent", "string", None, true),
    ("LogEvent", "client.userAgent.os", "string", None, true),
    ("LogEvent", "client.userAgent.browser", "string", None, true),
];

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix("#/components/schemas/")) {
        Some(name) => doc.pointer(&format!("/schemas/{name}")).map_or(&Value::Null, |s| resolve(doc, s)),
        None => schema,
    }
}

/// The schema of a property, looking through `$ref`, `allOf` and array `items`.
fn property<'a>(doc: &'a Value, schema: &'a Value, name: &str) -> Option<&'a Value> {
    let s = resolve(doc, schema);
    let s = if s.get("type").and_then(Value::as_str) == Some("array") { resolve(doc, s.get("items")?) } else { s };
    if let Some(p) = s.pointer(&format!("/properties/{name}")) {
        return Some(p);
    }
    s.get("allOf")?.as_array()?.iter().find_map(|part| property(doc, part, name))
}

#[test]
fn every_field_the_models_read_is_in_the_contract_with_its_type() {
    let doc: Value = serde_json::from_str(CONTRACT).unwrap_or(Value::Null);
    let mut problems = Vec::new();
    for &(root, path, ty, format, optional) in FIELDS_READ {
        let mut schema = json!({"$ref": format!("#/components/schemas/{root}")});
        for part in path.split('.') {
            match property(&doc, &schema, part) {
                Some(s) => schema = s.clone(),
                None => {
                    problems.push(format!("{root}.{path}: not in the contract"));
                    schema = Value::Null;
                    break;
                }
            }
        }
        if schema.is_null() {
            continue;
        }
        let s = resolve(&doc, &schema);
        let got = s.get("type").and_then(Value::as_str).unwrap_or("object");
        if got != ty {
            problems.push(format!("{root}.{path}: the model reads {ty}, the contract says {got}"));
        }
        if format.is_some() && s.get("format").and_then(Value::as_str) != format {
            problems.push(format!("{root}.{path}: expected format {format:?}"));
        }
        if !optional && s.get("nullable") == Some(&Value::Bool(true)) {
            problems.push(format!("{root}.{path}: nullable in the contract but required by the model"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The check can fail: a field Okta does not have, and a wrong type.
    let mut schema = json!({"$ref": "#/components/schemas/User"});
    assert!(property(&doc, &schema, "lastSeen").is_none());
    schema = property(&doc, &schema, "lastLogin").cloned().unwrap_or_default();
    assert_eq!(resolve(&doc, &schema).get("nullable"), Some(&Value::Bool(true)));
}

#[test]
fn the_models_load_the_specs_example_shapes_nulls_included() {
    // Trimmed from the spec's `ListLogs` example (components/examples/ListLogs), with the nulls
    // Okta sends where the schema does not say nullable.
    let event: Result<LogEvent, _> = serde_json::from_value(json!({
        "actor": {"id": "00uttidj01jqL21aM1d6", "type": "User", "alternateId": "john.doe@example.com",
                  "displayName": "John Doe", "detailEntry": null},
        "client": {"userAgent": {"rawUserAgent": "Mozilla/5.0", "os": "Mac OS X", "browser": "CHROME"},
                   "zone": null, "device": "Computer", "id": null, "ipAddress": "10.0.0.1"},
        "device": {"id": "guofdhyjex1feOgbN1d9", "managed": false},
        "displayMessage": "User login to Okta",
        "eventType": "user.session.start",
        "outcome": {"result": "SUCCESS", "reason": null},
        "published": "2024-08-13T15:58:20.353Z",
        "severity": "INFO",
        "uuid": "dc9fd3c0-598c-11ef-8478-2b7584bf8d5a",
        "version": 0,
        "target": [
            {"id": "pfdfdhyjf0HMbkP2e1d7", "type": "AuthenticatorEnrollment", "alternateId": "unknown",
             "displayName": "Okta Verify", "detailEntry": null},
            {"id": "0oatxlef9sQvvqInq5d6", "type": "AppInstance", "alternateId": "Okta Admin Console",
             "displayName": "Okta Admin Console", "detailEntry": null}
        ]
    }));
    let event = event.unwrap_or_else(|e| panic!("ListLogs example: {e}"));
    assert_eq!(event.target_of_type("AppInstance").map(|t| t.id.as_str()), Some("0oatxlef9sQvvqInq5d6"));
    assert_eq!(event.outcome.and_then(|o| o.result).as_deref(), Some("SUCCESS"));
    let no_target: Result<LogEvent, _> = serde_json::from_value(json!({
        "uuid": "u", "published": "2024-08-13T15:58:20.353Z", "eventType": "user.session.start", "target": null
    }));
    assert_eq!(no_target.map(|e| e.target.len()).ok(), Some(0));
    // Trimmed from the spec's `ListUsersSearchResponse` example: a STAGED user, never signed in.
    let user: Result<OktaUser, _> = serde_json::from_value(json!({
        "id": "00u1xke1apZnmHgpB1d7", "status": "STAGED", "created": "2021-11-17T16:11:16.000Z",
        "activated": null, "statusChanged": null, "lastLogin": null, "lastUpdated": "2022-05-24T15:39:09.000Z",
        "passwordChanged": null, "type": {"id": "oty2di92xFgQTiKEJ1d6"},
        "profile": {"firstName": "Ben", "lastName": "Richler", "mobilePhone": null, "secondEmail": "",
                    "department": "Engineering", "login": "ben.richler@example.com", "email": "ben.richler@example.com"}
    }));
    let user = user.unwrap_or_else(|e| panic!("ListUsersSearchResponse example: {e}"));
    assert_eq!((user.status.as_str(), user.last_login), ("STAGED", None));
    assert_eq!(user.profile.department.as_deref(), Some("Engineering"));
}

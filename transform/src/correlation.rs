//! Correlation → `account_identity`: the configured rules become one generated SQL statement
//! (a join per rule, normalisation as SQL expressions), so matching is a DataFusion plan over the
//! account and identity tables, not a loop over rows.
//!
//! Decisions, in order: an override wins; bots, apps and Slackbot are service accounts; otherwise
//! the first rule that matches anything decides: one identity = `matched`, several =
//! `ambiguous` (candidates listed, nothing guessed); an identity that the rules give two
//! accounts of one workspace is ambiguous for both; no rule matching = `orphan`.

use lastseen_config::{AccountAttr, CorrelationConfig, CorrelationRule, IdentityAttr, Normalize};

use crate::session;

/// Expected inputs (registered by the caller): `corr_accounts` (accounts of the day, with the
/// SCIM attributes their app's accounts file fills), `corr_identities` (the `identities` rows)
/// and `corr_overrides` (overrides file rows, maybe empty). An account is (app, account_id).
pub const INPUTS: [&str; 3] = ["corr_accounts", "corr_identities", "corr_overrides"];

fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `expr` normalised as `rule` says. Applied identically to both sides of the rule.
pub fn normalise(expr: &str, normalize: &[Normalize], aliases: &std::collections::BTreeMap<String, String>) -> String {
    let mut e = format!("CAST({expr} AS VARCHAR)");
    let mut steps = normalize.to_vec();
    steps.sort();
    // Whitespace before case, so both see the same text; plus-addressing before aliases.
    if steps.contains(&Normalize::Whitespace) {
        e = format!("regexp_replace(trim({e}), '\\s+', ' ', 'g')");
    }
    if steps.contains(&Normalize::Case) {
        e = format!("lower({e})");
    }
    if steps.contains(&Normalize::PlusAddressing) {
        e = format!("regexp_replace({e}, '^([^@+]*)\\+[^@]*@', '${{1}}@')");
    }
    if steps.contains(&Normalize::DomainAliases) && !aliases.is_empty() {
        let whens: String = aliases
            .iter()
            .map(|(alias, canonical)| {
                format!(
                    " WHEN {} THEN split_part({e}, '@', 1) || '@' || {}",
                    quote_literal(alias),
                    quote_literal(canonical)
                )
            })
            .collect();
        e = format!("CASE lower(split_part({e}, '@', 2)){whens} ELSE {e} END");
    }
    e
}

fn account_column(a: AccountAttr) -> &'static str {
    match a {
        AccountAttr::Email => "email",
        AccountAttr::Username => "username",
        AccountAttr::DisplayName => "display_name",
        AccountAttr::ScimUserName => "scim_user_name",
        AccountAttr::ScimExternalId => "scim_external_id",
        AccountAttr::ScimEmail => "scim_email",
        AccountAttr::EmployeeId => "employee_number",
    }
}

fn rule_sql(order: usize, rule: &CorrelationRule, aliases: &std::collections::BTreeMap<String, String>) -> String {
    let a = normalise(&format!("a.{}", account_column(rule.account)), &rule.normalize, aliases);
    let (source, col) = match rule.identity {
        IdentityAttr::AlternateEmails => {
            ("(SELECT identity_id, unnest(alternate_emails) AS v FROM corr_identities) AS i".to_string(), "i.v")
        }
        other => (
            "corr_identities AS i".to_string(),
            match other {
                IdentityAttr::IdentityId => "i.identity_id",
                IdentityAttr::Email => "i.email",
                IdentityAttr::Username => "i.username",
                IdentityAttr::EmployeeId => "i.employee_id",
                IdentityAttr::DisplayName => "i.display_name",
                IdentityAttr::AlternateEmails => unreachable!("handled above"),
            },
        ),
    };
    let i = normalise(col, &rule.normalize, aliases);
    format!(
        "SELECT {order} AS rule_order, {name} AS rule, a.app, a.workspace_id, a.account_id, i.identity_id, a.v AS matched_value \
         FROM (SELECT a.app, a.workspace_id, a.account_id, {a} AS v FROM acct AS a WHERE a.account_type NOT IN ('bot', 'app', 'slackbot', 'workflow_bot', 'connector_bot')) AS a \
         JOIN (SELECT i.identity_id, {i} AS v FROM {source}) AS i ON a.v = i.v \
         WHERE a.v IS NOT NULL AND a.v <> ''",
        name = quote_literal(&rule.name()),
    )
}

/// The whole correlation statement. Parameter: `$computed_at`.
pub fn correlation_sql(cfg: &CorrelationConfig) -> String {
    let rules: Vec<String> =
        cfg.rules.iter().enumerate().map(|(i, r)| rule_sql(i + 1, r, &cfg.domain_aliases)).collect();
    let hits = if rules.is_empty() {
        "SELECT 0 AS rule_order, CAST(NULL AS VARCHAR) AS rule, CAST(NULL AS VARCHAR) AS app, CAST(NULL AS VARCHAR) AS workspace_id, \
         CAST(NULL AS VARCHAR) AS account_id, CAST(NULL AS VARCHAR) AS identity_id, CAST(NULL AS VARCHAR) AS matched_value WHERE false"
            .to_string()
    } else {
        rules.join("\nUNION ALL\n")
    };
    format!(
        "WITH acct AS (
    SELECT a.app, a.workspace_id, a.account_id, a.account_type, a.email, a.username, a.display_name,
           a.scim_user_name, a.scim_external_id, a.scim_email, a.employee_number
    FROM corr_accounts AS a
),
hits AS (
{hits}
),
first_rule AS (
    SELECT app, workspace_id, account_id, min(rule_order) AS rule_order FROM hits GROUP BY app, workspace_id, account_id
),
decided AS (
    SELECT h.app, h.workspace_id, h.account_id,
           min(h.rule) AS rule,
           min(h.matched_value) AS matched_value,
           count(DISTINCT h.identity_id) AS n,
           min(h.identity_id) AS identity_id,
           array_to_string(array_sort(array_agg(DISTINCT h.identity_id)), ';') AS candidates
    FROM hits AS h
    JOIN first_rule AS f
      ON f.app = h.app AND f.workspace_id = h.workspace_id AND f.account_id = h.account_id
     AND f.rule_order = h.rule_order
    GROUP BY h.app, h.workspace_id, h.account_id
),
shared AS (
    SELECT d.app, d.workspace_id, d.identity_id
    FROM decided AS d
    LEFT JOIN corr_overrides AS o ON o.account_id = d.account_id
    WHERE d.n = 1 AND o.account_id IS NULL
    GROUP BY d.app, d.workspace_id, d.identity_id
    HAVING count(*) > 1
)
SELECT
    a.app,
    a.workspace_id,
    a.account_id,
    a.account_type,
    CASE
        WHEN o.account_id IS NOT NULL AND o.identity_id IS NOT NULL THEN 'matched'
        WHEN o.account_id IS NOT NULL AND o.service_owner_id IS NOT NULL THEN 'service'
        WHEN o.account_id IS NOT NULL THEN 'no_owner'
        WHEN a.account_type IN ('bot', 'app', 'slackbot', 'workflow_bot', 'connector_bot') THEN 'service'
        WHEN d.n > 1 OR sh.identity_id IS NOT NULL THEN 'ambiguous'
        WHEN d.n = 1 THEN 'matched'
        ELSE 'orphan'
    END AS match_status,
    CASE
        WHEN o.account_id IS NOT NULL THEN o.identity_id
        WHEN a.account_type IN ('bot', 'app', 'slackbot', 'workflow_bot', 'connector_bot') THEN NULL
        WHEN d.n = 1 AND sh.identity_id IS NULL THEN d.identity_id
    END AS identity_id,
    CASE
        WHEN o.account_id IS NOT NULL THEN 'override'
        WHEN a.account_type IN ('bot', 'app', 'slackbot', 'workflow_bot', 'connector_bot') THEN NULL
        ELSE d.rule
    END AS rule,
    CASE
        WHEN o.account_id IS NOT NULL THEN o.reason
        WHEN a.account_type IN ('bot', 'app', 'slackbot', 'workflow_bot', 'connector_bot') THEN NULL
        ELSE d.matched_value
    END AS matched_value,
    CASE
        WHEN o.account_id IS NOT NULL OR a.account_type IN ('bot', 'app', 'slackbot', 'workflow_bot', 'connector_bot') THEN NULL
        WHEN d.n > 1 OR sh.identity_id IS NOT NULL THEN d.candidates
    END AS candidates,
    o.service_owner_id AS service_owner_id,
    $computed_at AS computed_at
FROM corr_accounts AS a
LEFT JOIN corr_overrides AS o ON o.account_id = a.account_id
LEFT JOIN decided AS d ON d.app = a.app AND d.workspace_id = a.workspace_id AND d.account_id = a.account_id
LEFT JOIN shared AS sh
       ON sh.app = d.app AND sh.workspace_id = d.workspace_id AND sh.identity_id = d.identity_id AND d.n = 1"
    )
}

/// Correlate one day's `accounts` rows (file schema) with `identities` rows and
/// `correlation_overrides` rows (file schemas): the `account_identity` rows (file schema).
pub async fn correlate(
    ctx: &datafusion::prelude::SessionContext,
    cfg: &CorrelationConfig,
    accounts: std::sync::Arc<dyn datafusion::catalog::TableProvider>,
    identities: std::sync::Arc<dyn datafusion::catalog::TableProvider>,
    overrides: std::sync::Arc<dyn datafusion::catalog::TableProvider>,
    dt: chrono::NaiveDate,
    now: chrono::DateTime<chrono::Utc>,
) -> crate::Result<Vec<datafusion::arrow::record_batch::RecordBatch>> {
    use lastseen_lake::catalog::ACCOUNT_IDENTITY;
    // The day's accounts as a table (the derivation passes its staged rows, not a copy in memory).
    let _ = ctx.deregister_table("corr_accounts");
    ctx.register_table("corr_accounts", accounts)
        .map_err(|e| crate::TransformError::df("registering corr_accounts", e))?;
    for (name, table) in [("corr_identities", identities), ("corr_overrides", overrides)] {
        let _ = ctx.deregister_table(name);
        ctx.register_table(name, table).map_err(|e| crate::TransformError::df(format!("registering {name}"), e))?;
    }
    session::run(
        ctx,
        &format!("correlating accounts with identities for {dt}"),
        &correlation_sql(cfg),
        &[("computed_at", session::timestamp(now))],
        &ACCOUNT_IDENTITY.schema(),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_is_generated_in_a_fixed_order() {
        let aliases = [("corp.example".to_string(), "example.com".to_string())].into();
        let e = normalise("x", &[Normalize::DomainAliases, Normalize::Case], &aliases);
        assert!(e.starts_with("CASE lower(split_part(lower(CAST(x AS VARCHAR)), '@', 2)) WHEN 'corp.example'"), "{e}");
        // Quotes in configured values cannot break out of the literal.
        let aliases = [("o'brien.example".to_string(), "x.example".to_string())].into();
        assert!(normalise("x", &[Normalize::DomainAliases], &aliases).contains("'o''brien.example'"));
    }
}

-- identities: per person, the apps they have live accounts in and whether they are dormant in
-- every one of them or only in some.
--
-- One row per identity of the HR/IdP export (`identities` of as_of) that owns at least one live
-- account (not deactivated; service accounts left out) after the filters: the apps of those
-- accounts, in which of them the person shows evidence of use after the cutoff and in which not.
-- An identity dormant everywhere is a leaver or an unused licence set; one dormant in some apps
-- holds access it does not use there. Accounts nobody owns are the orphans report's.
--
-- Parameters (bound by `lastseen report identities`):
--   $as_of           DATE     the snapshot day (--as-of; default: the newest)
--   $cutoff          DATE     as_of - days (--days): an app is used when some account of the
--                             person there shows evidence of use after it
--   $app             VARCHAR  only accounts of this app (--app); NULL = every app
--   $department      VARCHAR  only identities of this department (case-insensitive); NULL = all
--
-- Columns:
--   identity_id, identity_name, identity_email, department, identity_status, termination_date
--                    the identity (HR/IdP export)
--   apps             the apps the identity has live accounts in, sorted, comma-separated
--   accounts         how many live accounts it owns
--   active_apps      the apps where some of its accounts shows use after the cutoff (NULL: none)
--   dormant_apps     the apps where none does: dormant, never seen or not covered (NULL: none)
--   state            dormant_everywhere | dormant_in_some | active_everywhere
--   last_seen_at, last_seen_app   the latest evidence of use in any app, and that app
--   owner_terminated the identity is terminated on or before as_of
--
-- Sorted: dormant everywhere first, then dormant in some apps, then by identity id.
--
-- Reads the run's daily rollup `account_report`. On a lake whose as-of day has no rollup,
-- lastseen runs the same report over the raw tables (query/reports/oracle/identities.sql).
--
-- @title     Identities across apps: where each person is dormant
-- @snapshots last_seen
-- @rollup    account_report
-- @param     as_of           The snapshot day (default: the newest one).
-- @param     days            An app is used when some account there shows evidence of use in this many days (binds $cutoff = $as_of - $days).
-- @param     app             Only accounts of this app (e.g. okta); default: every app.
-- @param     department      Only identities of this department (case-insensitive); default: all.
--
WITH acct AS (
    SELECT
        identity_id, identity_name, identity_email, department, identity_status, termination_date,
        app, account_id, last_seen_at,
        last_seen_at IS NOT NULL AND CAST(last_seen_at AS DATE) > CAST($cutoff AS DATE) AS used
    FROM account_report
    WHERE dt = CAST($as_of AS DATE)
      AND identity_id IS NOT NULL
      AND status <> 'deactivated'
      AND account_type NOT IN ('bot', 'app', 'slackbot', 'workflow_bot', 'connector_bot')
      AND ($app IS NULL OR app = $app)
      AND ($department IS NULL OR lower(department) = lower($department))
),
per_app AS (
    SELECT identity_id, app, count(*) AS accounts, bool_or(used) AS used, max(last_seen_at) AS last_seen_at
    FROM acct
    GROUP BY identity_id, app
),
per_identity AS (
    SELECT
        identity_id,
        array_to_string(array_sort(array_agg(app)), ',')                              AS apps,
        sum(accounts)                                                               AS accounts,
        NULLIF(COALESCE(array_to_string(array_sort(array_agg(app) FILTER (WHERE used)), ','), ''), '')
                                                                                    AS active_apps,
        NULLIF(COALESCE(array_to_string(array_sort(array_agg(app) FILTER (WHERE NOT used)), ','), ''), '')
                                                                                    AS dormant_apps,
        count(*) FILTER (WHERE used)                                                AS used_apps,
        count(*)                                                                    AS n_apps,
        max(last_seen_at)                                                           AS last_seen_at,
        first_value(app ORDER BY last_seen_at DESC NULLS LAST, app)
            FILTER (WHERE last_seen_at IS NOT NULL)                                 AS last_seen_app
    FROM per_app
    GROUP BY identity_id
),
person AS (
    SELECT identity_id, min(identity_name) AS identity_name, min(identity_email) AS identity_email,
           min(department) AS department, min(identity_status) AS identity_status,
           min(termination_date) AS termination_date
    FROM acct
    GROUP BY identity_id
)
SELECT
    p.identity_id,
    p.identity_name,
    p.identity_email,
    p.department,
    p.identity_status,
    p.termination_date,
    x.apps,
    x.accounts,
    x.active_apps,
    x.dormant_apps,
    CASE
        WHEN x.used_apps = 0 THEN 'dormant_everywhere'
        WHEN x.used_apps < x.n_apps THEN 'dormant_in_some'
        ELSE 'active_everywhere'
    END                                                                             AS state,
    x.last_seen_at,
    x.last_seen_app,
    COALESCE(lower(p.identity_status) = 'terminated'
             AND (p.termination_date IS NULL OR p.termination_date <= CAST($as_of AS DATE)), false)
                                                                                    AS owner_terminated
FROM person AS p
JOIN per_identity AS x ON x.identity_id = p.identity_id
ORDER BY CASE WHEN x.used_apps = 0 THEN 0 WHEN x.used_apps < x.n_apps THEN 1 ELSE 2 END, p.identity_id;

-- @chart bar Identities by where they are dormant
SELECT state, count(*) AS identities FROM report GROUP BY state ORDER BY state;

-- @chart bar Identities dormant in each app
SELECT app, count(*) AS identities
FROM (SELECT unnest(string_to_array(dormant_apps, ',')) AS app FROM report WHERE dormant_apps IS NOT NULL) AS d
GROUP BY app
ORDER BY identities DESC, app;

-- sso_last_seen as of snapshot day $dt: per identity provider, IdP user and app instance, the
-- first and last single sign-on through the IdP up to the end of $dt, folded like last_seen
-- from a base snapshot (as of day P < $dt) and the sign-ons of the days after it:
--
--   sso_base      sso_last_seen rows as of P (empty for a full rebuild)
--   sso_days      the IdPs' sign-ons of the days P < day <= $dt, one row per (day, user,
--                 instance): the union of the sql/sso/<idp>.sql files
--   sso_accounts  the accounts snapshot of $dt (every app's accounts, the IdP's included)
--   identities    the HR export (read as of $dt)
--
-- Nothing here is one IdP's or one app's: a new IdP is a new sql/sso/<idp>.sql file and its
-- sql/accounts/<idp>.sql.
--
-- The mapped account: the instance's `mapped_app` (the lastseen app the IdP's configuration
-- says the instance stands for) and the IdP user's account in it on $dt, found as the evidence
-- for that app finds it (sql/evidence/okta_sso_slack.sql): the IdP account's email, lower-cased,
-- is the target account's email, or is the primary email of an identity one of whose addresses
-- is the target account's email. `mapped_accounts` counts the target accounts found (NULL when
-- the instance maps to no app); `mapped_account_id` names the one when there is exactly one.
--
-- Label and mapped app are those of the latest sign-on (ties: the smaller value, in both modes,
-- so an incremental fold equals a full rebuild).
--
-- Parameters: $dt DATE, $computed_at TIMESTAMP.
WITH fresh AS (
    SELECT
        idp,
        idp_user_id,
        app_instance_id,
        first_value(app_instance_label ORDER BY last_at DESC, app_instance_label) AS app_instance_label,
        first_value(mapped_app ORDER BY last_at DESC, mapped_app)                 AS mapped_app,
        min(first_at)                                                             AS first_at,
        max(last_at)                                                              AS last_at
    FROM sso_days
    GROUP BY idp, idp_user_id, app_instance_id
),
merged AS (
    SELECT
        COALESCE(f.idp, b.idp)                                                    AS idp,
        COALESCE(f.idp_user_id, b.idp_user_id)                                    AS idp_user_id,
        COALESCE(f.app_instance_id, b.app_instance_id)                            AS app_instance_id,
        CASE
            WHEN b.last_sso_at IS NULL OR f.last_at > b.last_sso_at THEN f.app_instance_label
            WHEN f.last_at = b.last_sso_at THEN least(f.app_instance_label, b.app_instance_label)
            ELSE b.app_instance_label
        END                                                                       AS app_instance_label,
        CASE
            WHEN b.last_sso_at IS NULL OR f.last_at > b.last_sso_at THEN f.mapped_app
            WHEN f.last_at = b.last_sso_at THEN least(f.mapped_app, b.mapped_app)
            ELSE b.mapped_app
        END                                                                       AS mapped_app,
        CASE
            WHEN b.first_sso_at IS NULL OR f.first_at < b.first_sso_at THEN COALESCE(f.first_at, b.first_sso_at)
            ELSE b.first_sso_at
        END                                                                       AS first_sso_at,
        CASE
            WHEN b.last_sso_at IS NULL OR f.last_at > b.last_sso_at THEN f.last_at
            ELSE b.last_sso_at
        END                                                                       AS last_sso_at
    FROM sso_base AS b
    FULL OUTER JOIN fresh AS f
      ON f.idp = b.idp AND f.idp_user_id = b.idp_user_id AND f.app_instance_id = b.app_instance_id
),
idp_users AS (
    SELECT DISTINCT idp, idp_user_id FROM merged WHERE mapped_app IS NOT NULL
),
person AS (
    -- IdP user → the addresses of the person on $dt: the IdP account's email, and every address
    -- of the identity whose primary email it is.
    SELECT a.app AS idp, a.account_id AS idp_user_id, lower(a.email) AS email
    FROM sso_accounts AS a
    JOIN idp_users AS u ON u.idp = a.app AND u.idp_user_id = a.account_id
    WHERE a.email IS NOT NULL
    UNION
    SELECT a.app AS idp, a.account_id AS idp_user_id, lower(x.alt) AS email
    FROM sso_accounts AS a
    JOIN idp_users AS u ON u.idp = a.app AND u.idp_user_id = a.account_id
    JOIN (
        SELECT email, unnest(alternate_emails) AS alt
        FROM identities
        WHERE dt = $dt AND email IS NOT NULL
    ) AS x
      ON lower(x.email) = lower(a.email)
    WHERE x.alt IS NOT NULL
),
links AS (
    SELECT p.idp, p.idp_user_id, t.app AS target_app, count(DISTINCT t.account_id) AS n,
           min(t.account_id) AS one
    FROM person AS p
    JOIN sso_accounts AS t
      ON lower(t.email) = p.email AND t.app <> p.idp
    GROUP BY p.idp, p.idp_user_id, t.app
)
SELECT
    m.idp,
    m.idp_user_id,
    m.app_instance_id,
    m.app_instance_label,
    m.mapped_app,
    CASE WHEN l.n = 1 THEN l.one END                                              AS mapped_account_id,
    CASE WHEN m.mapped_app IS NOT NULL THEN COALESCE(l.n, 0) END                  AS mapped_accounts,
    m.first_sso_at,
    m.last_sso_at,
    $computed_at                                                                  AS computed_at
FROM merged AS m
LEFT JOIN links AS l
       ON l.idp = m.idp AND l.idp_user_id = m.idp_user_id AND l.target_app = m.mapped_app

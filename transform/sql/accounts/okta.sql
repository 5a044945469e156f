-- Okta's accounts as of one snapshot day: every user of that day's `/api/v1/users` snapshot as an
-- app-agnostic account row (app 'okta'), so Okta users are correlated, folded into last_seen and
-- reported like Slack's accounts.
--
-- @table okta_users
--
-- An Okta org is one tenant: workspace_id is '' (the users snapshot does not carry the org URL)
-- and workspace_name is NULL, so the reports' oracles (which name workspaces from
-- slack_workspaces) and the rollup agree.
--
-- Status: Okta's `UserStatus` mapped to the statuses the reports use.
--   ACTIVE, RECOVERY, PASSWORD_EXPIRED, LOCKED_OUT   'active'       the user holds access: a
--                           recovery, password reset or unlock restores sign-in without an admin
--                           re-activating anything, so the account is live and can be dormant
--   STAGED, PROVISIONED     'invited'      created, never activated (PROVISIONED: the activation
--                           email is out, not yet accepted): "invitation never accepted"
--   SUSPENDED, DEPROVISIONED 'deactivated' cannot sign in; SUSPENDED is reversible by an admin,
--                           but no access remains to review or reclaim (left out of dormant,
--                           seats, orphans, terminated and review like a deactivated Slack user)
--   anything else           'active'       (a status Okta adds later is assumed live: it shows
--                           up in the reports rather than silently disappearing)
--
-- Account type: Okta has no bot flag. A user whose `profile.userType` is `service` (any case;
-- also `service_account`, `api`, `system`) is a service account, typed 'app' like a Slack app
-- user, so correlation calls it `service` and the reports leave it out unless --include-bots.
-- Everyone else is a 'member' (Okta admin roles are not in the users API).
--
-- Correlation: `email`, `username` (the Okta login), `employee_number`, and the login and email
-- as the IdP's SCIM-style `scim_user_name` / `scim_email`, so the default rules
-- (employee_id, email, alternate emails) match Okta users to the HR export as they match Slack's.
--
-- Parameters: $dt DATE.
SELECT
    'okta'                                                          AS app,
    ''                                                              AS workspace_id,
    u.user_id                                                       AS account_id,
    CAST(NULL AS VARCHAR)                                           AS enterprise_id,
    u.login                                                         AS username,
    NULLIF(trim(COALESCE(u.first_name, '') || ' ' || COALESCE(u.last_name, '')), '')
                                                                    AS display_name,
    u.email                                                         AS email,
    CASE
        WHEN lower(trim(u.user_type)) IN ('service', 'service_account', 'api', 'system') THEN 'app'
        ELSE 'member'
    END                                                             AS account_type,
    CASE u.status
        WHEN 'STAGED'         THEN 'invited'
        WHEN 'PROVISIONED'    THEN 'invited'
        WHEN 'SUSPENDED'      THEN 'deactivated'
        WHEN 'DEPROVISIONED'  THEN 'deactivated'
        ELSE 'active'
    END                                                             AS status,
    CAST(NULL AS BOOLEAN)                                           AS billable,
    CAST(NULL AS VARCHAR[])                                         AS groups,
    CAST(NULL AS BOOLEAN)                                           AS has_2fa,
    CAST(NULL AS BOOLEAN)                                           AS has_sso,
    u.created                                                       AS created_at,
    u.last_updated                                                  AS updated_at,
    CAST(NULL AS VARCHAR[])                                         AS workspace_ids,
    u.collected_at                                                  AS collected_at,
    CAST(NULL AS VARCHAR)                                           AS workspace_name,
    u.login                                                         AS scim_user_name,
    CAST(NULL AS VARCHAR)                                           AS scim_external_id,
    u.email                                                         AS scim_email,
    u.employee_number                                               AS employee_number
FROM okta_users AS u
WHERE u.dt = $dt

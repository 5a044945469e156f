-- usage_daily for one snapshot day $dt: the day's accounts (every status and type) counted per
-- app, home workspace, workspace memberships, owner department and account type, the grain the
-- `usage` report filters and groups at. Read from the day's `account_report` row of each
-- account (transform/sql/account_report.sql):
--
--   accounts        accounts of the group listed on $dt
--   dau, wau, mau   of them, active on $dt, on some day of $dt-6 .. $dt, of $dt-29 .. $dt
--                   (`last_active_day`: the newest day up to $dt that `activity_daily` says
--                   the account was active, within the last 30 days)
--   billable_seats  of them, billed by Slack on $dt (`billable`); billing_known: billable known
--   key_since       the newest `key_since` of the group's accounts: every account of the group
--                   has had this workspace, memberships, department and type since that day
--
-- Parameters: $dt DATE, $wau_from DATE ($dt - 6).
SELECT
    app,
    workspace_id,
    workspace_ids,
    department,
    account_type,
    count(*)                                                    AS accounts,
    count(*) FILTER (WHERE last_active_day = $dt)               AS dau,
    count(*) FILTER (WHERE last_active_day >= $wau_from)        AS wau,
    count(last_active_day)                                      AS mau,
    count(*) FILTER (WHERE billable)                            AS billable_seats,
    count(billable)                                             AS billing_known,
    max(key_since)                                              AS key_since
FROM account_report
WHERE dt = $dt
GROUP BY app, workspace_id, workspace_ids, department, account_type

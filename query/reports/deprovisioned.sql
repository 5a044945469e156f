-- deprovisioned: what deprovisioning did, for auditors. One row per plan, account and action
-- (deactivate / reactivate) with its latest outcome from the `deprovision_actions` journal:
-- done, skipped (a guard refused it when re-checked live, with the reason) or failed (Slack's
-- answer); who approved it, who ran it, why (a single action's --reason), the evidence the plan
-- carried (the reviewer's decision, last use, state) and when it was intended and completed.
--
-- Parameters: none (it lists the whole journal; filter the export, or query
-- `deprovision_actions` with `lastseen sql`).
--
-- Columns:
--   plan_id, account_id, workspace_id, username, email, action
--   outcome, detail, http_status, slack_error   the journaled outcome
--   intended_at, completed_at                   intent and outcome times (UTC)
--   approvers, actor, reason, evidence          who and why (evidence as the plan's JSON)
--
-- Sorted by completion time, then plan and account.
--
-- @title     Deprovisioned accounts
--
WITH outcome AS (
    SELECT *,
           row_number() OVER (PARTITION BY plan_id, account_id, action ORDER BY at DESC, entry_id DESC) AS rn
    FROM deprovision_actions
    WHERE phase = 'outcome'
),
intent AS (
    SELECT plan_id, account_id, action, min(at) AS intended_at
    FROM deprovision_actions
    WHERE phase = 'intent'
    GROUP BY plan_id, account_id, action
)
SELECT o.plan_id, o.account_id, o.workspace_id, o.username, o.email, o.action,
       o.outcome, o.detail, o.http_status, o.slack_error,
       i.intended_at, o.at AS completed_at,
       o.approvers, o.actor, o.reason, o.evidence
FROM outcome AS o
LEFT JOIN intent AS i
       ON i.plan_id = o.plan_id AND i.account_id = o.account_id AND i.action = o.action
WHERE o.rn = 1
ORDER BY completed_at, o.plan_id, o.account_id, o.action;

-- @chart bar Outcomes by action
SELECT action || ': ' || outcome AS outcome, count(*) AS accounts
FROM report
GROUP BY 1
ORDER BY 1;

-- activity_daily for every day being derived (one plan for all of them; `dt` last, the rows of
-- each day together): every account some evidence source mentions on that day, whether
-- any source saw it active, which sources spoke, the earliest and latest use proven, and the
-- login and message counts where a source gives them (NULL = no source counts them).
--
-- `evidence` is the union of the per-source files in sql/evidence/; each row names the app of
-- the account it speaks for, and an account is (app, account_id): two apps' ids never merge.
-- The latest use's source is chosen by time, then by source priority (finest-grained first).
--
-- `evidence` holds exactly the days being derived. Parameters: $computed_at TIMESTAMP.
SELECT
    app                                                                 AS app,
    account_id                                                          AS account_id,
    min(workspace_id)                                                   AS workspace_id,
    bool_or(active)                                                     AS active,
    array_to_string(array_sort(array_agg(DISTINCT source)), ',')        AS sources,
    min(first_at)                                                       AS first_at,
    max(last_at)                                                        AS last_at,
    first_value(source ORDER BY last_at DESC NULLS LAST, priority ASC)
        FILTER (WHERE last_at IS NOT NULL)                              AS last_source,
    sum(logins)                                                         AS logins,
    sum(messages)                                                       AS messages,
    $computed_at                                                        AS computed_at,
    day                                                                 AS dt
FROM evidence
GROUP BY day, app, account_id
ORDER BY day

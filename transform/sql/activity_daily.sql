-- activity_daily for every day being derived (one plan for all of them; `dt` last, the rows of
-- each day together): every account some evidence source mentions on that day, whether
-- any source saw it active, which sources spoke, the earliest and latest use proven, and the
-- login and message counts where a source gives them (NULL = no source counts them).
--
-- `evidence` is the union of the per-source files in sql/evidence/; each row names the app of
-- the account it speaks for, and an account is (app, account_id): two apps' ids never merge.
-- The latest use's source is chosen by time, then by source priority (finest-grained first).
--
-- Two steps, each a plain aggregation (DataFusion runs `min`, `max`, `sum`, `bool_or`,
-- `array_agg` and `first_value` of a number vectorised over all groups at once; `DISTINCT`
-- aggregates and `first_value` of text keep one accumulator object per group, which on a first
-- run's 900,000 account-days took 7 s and 2.3 GiB instead of 0.7 s and 0.2 GiB):
--   per_source  one row per day, account and source (so `sources` needs no DISTINCT);
--   per_account one row per day and account. The latest use's source is carried as one
--               sortable text per source, `max` of which is the latest `last_at`, then the
--               lowest priority: 20 digits of last_at in microseconds since 1970 (evidence is
--               never older), 4 digits of 9999 - priority, then the source's name.
--
-- The previous form of this query (array_agg(DISTINCT) and first_value(source ORDER BY ...))
-- is kept in transform/src/tests.rs as the oracle this one is tested against.
--
-- `evidence` holds exactly the days being derived. Parameters: $computed_at TIMESTAMP.
WITH per_source AS (
    SELECT
        day,
        app,
        account_id,
        source,
        min(workspace_id)                                               AS workspace_id,
        bool_or(active)                                                 AS active,
        min(first_at)                                                   AS first_at,
        max(last_at)                                                    AS last_at,
        sum(logins)                                                     AS logins,
        sum(messages)                                                   AS messages,
        lpad(CAST(CAST(max(last_at) AS BIGINT) AS VARCHAR), 20, '0')
            || lpad(CAST(9999 - min(priority) AS VARCHAR), 4, '0')
            || source                                                   AS latest_key
    FROM evidence
    GROUP BY day, app, account_id, source
)
SELECT
    app                                                                 AS app,
    account_id                                                          AS account_id,
    min(workspace_id)                                                   AS workspace_id,
    bool_or(active)                                                     AS active,
    array_to_string(array_sort(array_agg(source)), ',')                 AS sources,
    min(first_at)                                                       AS first_at,
    max(last_at)                                                        AS last_at,
    substr(max(latest_key), 25)                                         AS last_source,
    sum(logins)                                                         AS logins,
    sum(messages)                                                       AS messages,
    $computed_at                                                        AS computed_at,
    day                                                                 AS dt
FROM per_source
GROUP BY day, app, account_id
ORDER BY day

-- last_seen as of day D, folded from a base snapshot (as of day P < D) and the activity_daily
-- days after it, so the cost grows with the number of accounts, not with the history:
--
--   base          last_seen rows as of P (empty for a full rebuild, P = -infinity)
--   days_in       activity_daily rows with P < dt <= D (every day, for a full rebuild)
--   leaving_days  activity_daily rows with P - 90 < dt <= min(P, D - 30): days counted in the
--                 base's 30- and 90-day windows that fall out of D's windows
--   listed        the accounts snapshot of D (app, workspace_id, account_id)
--   covered       the apps some evidence source covers on D (an app's accounts without
--                 evidence are `never_seen` when it is covered, `unknown` when not)
--
-- An account is (app, account_id): every grouping and join is on both.
--
-- Active-day counts slide: base count - days leaving the window + new days inside it.
-- Ties on the latest time are broken by source name, the same way in both modes.
--
-- Parameters: $d30 = D - 30, $d90 = D - 90, $p30 = P - 30, $p90 = P - 90 (DATE),
--             $dormant_cutoff = D - reports.dormant_days (DATE),
--             $computed_at TIMESTAMP.
WITH fresh AS (
    SELECT
        app,
        account_id,
        min(workspace_id)                                                       AS workspace_id,
        max(last_at)                                                            AS last_at,
        -- The source of the latest use, ties to the first name: `min` of one sortable text
        -- per row (19 digits of 999999999999999999 - last_at in microseconds, so later sorts
        -- first, then the name). `first_value(last_source ORDER BY last_at DESC NULLS LAST,
        -- last_source)` says the same but keeps an accumulator object per account (DataFusion
        -- vectorises `min` of text, not `first_value` of text).
        substr(min(lpad(CAST(999999999999999999 - CAST(last_at AS BIGINT) AS VARCHAR), 19, '0')
                   || last_source), 20)                                         AS last_source,
        min(first_at)                                                           AS first_at,
        sum(CASE WHEN active AND dt > $d30 THEN 1 ELSE 0 END)                   AS in30,
        sum(CASE WHEN active AND dt > $d90 THEN 1 ELSE 0 END)                   AS in90
    FROM days_in
    GROUP BY app, account_id
),
leaving AS (
    SELECT
        app,
        account_id,
        sum(CASE WHEN dt > $p30 AND dt <= $d30 THEN 1 ELSE 0 END)               AS out30,
        sum(CASE WHEN dt > $p90 AND dt <= $d90 THEN 1 ELSE 0 END)               AS out90
    FROM leaving_days
    WHERE active
    GROUP BY app, account_id
),
merged AS (
    SELECT
        COALESCE(l.app, b.app, f.app)                                           AS app,
        COALESCE(l.account_id, b.account_id, f.account_id)                      AS account_id,
        COALESCE(l.workspace_id, b.workspace_id, f.workspace_id)                AS workspace_id,
        l.account_id IS NOT NULL                                                AS listed,
        CASE
            WHEN f.last_at IS NULL THEN b.last_seen_at
            WHEN b.last_seen_at IS NULL OR f.last_at > b.last_seen_at THEN f.last_at
            ELSE b.last_seen_at
        END                                                                     AS last_seen_at,
        CASE
            WHEN f.last_at IS NULL THEN b.last_seen_source
            WHEN b.last_seen_at IS NULL OR f.last_at > b.last_seen_at THEN f.last_source
            WHEN f.last_at = b.last_seen_at AND f.last_source < b.last_seen_source THEN f.last_source
            ELSE b.last_seen_source
        END                                                                     AS last_seen_source,
        CASE
            WHEN f.first_at IS NULL THEN b.first_seen_at
            WHEN b.first_seen_at IS NULL OR f.first_at < b.first_seen_at THEN f.first_at
            ELSE b.first_seen_at
        END                                                                     AS first_seen_at,
        COALESCE(b.active_days_30, 0) - COALESCE(lv.out30, 0) + COALESCE(f.in30, 0)  AS active_days_30,
        COALESCE(b.active_days_90, 0) - COALESCE(lv.out90, 0) + COALESCE(f.in90, 0)  AS active_days_90
    FROM listed AS l
    FULL OUTER JOIN base AS b ON b.app = l.app AND b.account_id = l.account_id
    FULL OUTER JOIN fresh AS f
        ON f.app = COALESCE(l.app, b.app) AND f.account_id = COALESCE(l.account_id, b.account_id)
    LEFT JOIN leaving AS lv
        ON lv.app = COALESCE(l.app, b.app, f.app) AND lv.account_id = COALESCE(l.account_id, b.account_id, f.account_id)
)
SELECT
    m.app                                                                       AS app,
    COALESCE(workspace_id, '')                                                  AS workspace_id,
    account_id,
    last_seen_at,
    last_seen_source,
    first_seen_at,
    $computed_at                                                                AS computed_at,
    active_days_30,
    active_days_90,
    CASE
        WHEN last_seen_at IS NULL AND c.app IS NOT NULL THEN 'never_seen'
        WHEN last_seen_at IS NULL THEN 'unknown'
        WHEN CAST(last_seen_at AS DATE) <= $dormant_cutoff THEN 'dormant'
        ELSE 'active'
    END                                                                         AS state,
    listed
FROM merged AS m
LEFT JOIN covered AS c ON c.app = m.app
WHERE listed OR last_seen_at IS NOT NULL OR first_seen_at IS NOT NULL

-- sm_fact (SPEC §4): agent media sessions that intersect the billing day.
-- A row is open when ACTIVE_FLAG = 1 or END_TS is null: end_ts is then null.
-- Every row that started in the window is read unless it validly ended at or before the
-- day's start: a closed row ending before it started (a sentinel END_TS such as 0 or -1)
-- is read, so that the extract counts it as rejected end_before_start (never lost here).
-- An empty SWITCH_NAME is null (SPEC §4). Rows are ordered by the session
-- key, then by every column (text in code-point order, nulls last): of the rows sharing a
-- key, the extract keeps the first and counts the others as duplicate_key.
-- params: day_start, day_end, lookback_start, tenant_key
SELECT f.sm_res_session_fact_key::bigint AS session_id,
       r.resource_cfg_dbid::bigint AS agent_id,
       upper(coalesce(m.media_name_code, m.media_name)) AS media,
       nullif(r.switch_name, '')::text AS switch_name,
       f.start_ts::bigint AS start_ts,
       (CASE WHEN f.active_flag = 1 THEN NULL ELSE f.end_ts END)::bigint AS end_ts
FROM sm_res_session_fact f
JOIN resource_ r ON r.resource_key = f.resource_key AND r.resource_type_code = 'AGENT'
JOIN media_type m ON m.media_type_key = f.media_type_key
WHERE f.start_ts < $2
  AND f.start_ts >= $3
  AND (f.active_flag = 1 OR f.end_ts IS NULL OR f.end_ts > $1 OR f.end_ts < f.start_ts)
  AND ($4::int IS NULL OR (f.tenant_key = $4 AND r.tenant_key = $4))
ORDER BY 1, 2, upper(coalesce(m.media_name_code, m.media_name)) COLLATE "C",
         nullif(r.switch_name, '')::text COLLATE "C", 5, 6

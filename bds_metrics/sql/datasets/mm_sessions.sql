-- mm_sessions (SPEC §4): multimedia login sessions (Interaction Server) that intersect
-- the billing day. AGENTID is the Person DBID; open while TERMINATED_TS is null.
-- Every row that started in the window is read unless it validly ended at or before the
-- day's start: one ending before it started is read and counted as rejected
-- end_before_start by the extract. session_key (the row's ID, not in the Parquet file)
-- orders the rows, then every column (nulls last): of the rows sharing an ID the extract
-- keeps the first and counts the others as duplicate_key.
-- params: day_start, day_end, lookback_start, tenant_dbid
SELECT s.id::bigint AS session_key,
       s.loginsessionid::text AS login_session_id,
       s.agentid::bigint AS agent_id,
       s.created_ts::bigint AS start_ts,
       s.terminated_ts::bigint AS end_ts
FROM gidb_g_login_session_mm s
WHERE s.created_ts < $2
  AND s.created_ts >= $3
  AND (s.terminated_ts IS NULL OR s.terminated_ts > $1 OR s.terminated_ts < s.created_ts)
  AND ($4::int IS NULL OR s.tenantid = $4)
ORDER BY 1, s.loginsessionid::text COLLATE "C", 3, 4, 5

-- mm_sessions (SPEC §4): multimedia login sessions (Interaction Server) that intersect
-- the billing day. AGENTID is the Person DBID; open while TERMINATED_TS is null.
-- params: day_start, day_end, lookback_start, tenant_dbid
SELECT s.loginsessionid::text AS login_session_id,
       s.agentid::bigint AS agent_id,
       s.created_ts::bigint AS start_ts,
       s.terminated_ts::bigint AS end_ts
FROM gidb_g_login_session_mm s
WHERE s.created_ts < $2
  AND s.created_ts >= $3
  AND (s.terminated_ts IS NULL OR s.terminated_ts > $1)
  AND ($4::int IS NULL OR s.tenantid = $4)
ORDER BY s.id

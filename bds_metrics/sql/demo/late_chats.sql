-- `bds demo`: rows the Info Mart's ETL "delivers late" for one billing day, after the
-- day was billed, so the demo shows a restatement (SPEC §7). For up to %(n)s agents of
-- the tenant with no multimedia login session that day: a login session
-- [%(login_start)s, %(login_end)s) and a handled chat inside it.
WITH pick AS (
    SELECT DISTINCT ON (r.resource_cfg_dbid) r.resource_key, r.resource_cfg_dbid AS agent_id
    FROM resource_ r
    WHERE r.tenant_key = %(tenant_key)s AND r.resource_type_code = 'AGENT'
      AND r.resource_cfg_dbid IS NOT NULL
      AND NOT EXISTS (
          SELECT 1 FROM gidb_g_login_session_mm m
          WHERE m.agentid = r.resource_cfg_dbid AND m.created_ts < %(day_end)s
            AND coalesce(m.terminated_ts, %(day_end)s) > %(day_start)s)
    ORDER BY r.resource_cfg_dbid, r.resource_key
    LIMIT %(n)s
), numbered AS (
    SELECT p.*, row_number() OVER (ORDER BY p.agent_id) AS k FROM pick p
), mm AS (
    INSERT INTO gidb_g_login_session_mm
        (id, loginsessionid, agentid, tenantid, created_ts, terminated_ts)
    SELECT (SELECT coalesce(max(id), 0) FROM gidb_g_login_session_mm) + k,
           'LATE-' || agent_id, agent_id, %(tenant_dbid)s, %(login_start)s, %(login_end)s
    FROM numbered
    RETURNING id
)
INSERT INTO interaction_resource_fact
    (interaction_resource_id, interaction_id, tenant_key, resource_key, media_type_key,
     start_ts, end_ts, talk_duration, call_attempt_id)
SELECT (SELECT coalesce(max(interaction_resource_id), 0) FROM interaction_resource_fact) + k,
       (SELECT coalesce(max(interaction_id), 0) FROM interaction_resource_fact) + k,
       %(tenant_key)s, resource_key,
       (SELECT media_type_key FROM media_type WHERE upper(media_name_code) = 'CHAT' LIMIT 1),
       %(chat_at)s, %(chat_at)s + 300, 300, NULL
FROM numbered

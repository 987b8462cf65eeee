-- voice_calls (SPEC §4): inbound voice interactions started in the look-back window or
-- the day. The agent is the one of the earliest INTERACTION_RESOURCE_FACT row of an
-- agent with TALK_DURATION > 0 (ties: smallest INTERACTION_RESOURCE_ID): every call is
-- joined to its agents' rows (none: one row with a null agent) and DISTINCT ON keeps the
-- first per call in that order. As one join the planner can hash it when the window
-- holds many calls, or probe the INTERACTION_ID index per call when it holds few.
-- An empty CallUUID, ANI or DNIS is null (SPEC §4).
-- params: day_end, lookback_start, tenant_key
SELECT DISTINCT ON (f.start_ts, f.interaction_id)
       nullif(f.media_server_ixn_guid, '')::text AS callid,
       nullif(f.source_address, '')::text AS ani,
       nullif(f.target_address, '')::text AS dnis,
       f.start_ts::bigint AS start_ts,
       f.end_ts::bigint AS end_ts,
       r.resource_cfg_dbid::bigint AS agent_id
FROM interaction_fact f
JOIN media_type m ON m.media_type_key = f.media_type_key
JOIN interaction_type t ON t.interaction_type_key = f.interaction_type_key
LEFT JOIN (interaction_resource_fact i
           JOIN resource_ r ON r.resource_key = i.resource_key
                           AND r.resource_type_code = 'AGENT')
       ON i.interaction_id = f.interaction_id
      AND i.talk_duration > 0
      AND ($3::int IS NULL OR (i.tenant_key = $3 AND r.tenant_key = $3))
WHERE upper(coalesce(m.media_name_code, m.media_name)) = 'VOICE'
  AND upper(t.interaction_type_code) = 'INBOUND'
  AND f.start_ts >= $2
  AND f.start_ts < $1
  AND ($3::int IS NULL OR f.tenant_key = $3)
ORDER BY f.start_ts, f.interaction_id, i.start_ts, i.interaction_resource_id

-- voice_calls (SPEC §4): inbound voice interactions started in the look-back window or
-- the day. The agent is the one of the earliest INTERACTION_RESOURCE_FACT row of an
-- agent with TALK_DURATION > 0 (ties: smallest INTERACTION_RESOURCE_ID).
-- params: day_end, lookback_start, tenant_key
SELECT f.media_server_ixn_guid AS callid,
       f.source_address AS ani,
       f.target_address AS dnis,
       f.start_ts::bigint AS start_ts,
       f.end_ts::bigint AS end_ts,
       h.agent_id AS agent_id
FROM interaction_fact f
JOIN media_type m ON m.media_type_key = f.media_type_key
JOIN interaction_type t ON t.interaction_type_key = f.interaction_type_key
LEFT JOIN LATERAL (
    SELECT r.resource_cfg_dbid::bigint AS agent_id
    FROM interaction_resource_fact i
    JOIN resource_ r ON r.resource_key = i.resource_key AND r.resource_type_code = 'AGENT'
    WHERE i.interaction_id = f.interaction_id
      AND i.talk_duration > 0
      AND ($3::int IS NULL OR (i.tenant_key = $3 AND r.tenant_key = $3))
    ORDER BY i.start_ts, i.interaction_resource_id
    LIMIT 1
) h ON true
WHERE upper(coalesce(m.media_name_code, m.media_name)) = 'VOICE'
  AND upper(t.interaction_type_code) = 'INBOUND'
  AND f.start_ts >= $2
  AND f.start_ts < $1
  AND ($3::int IS NULL OR f.tenant_key = $3)
ORDER BY f.start_ts, f.interaction_id

-- handled (SPEC §4): interactions an agent handled (TALK_DURATION > 0) from the start
-- of the look-back window to the day's end. ocs: the call attempt is an OCS dialing
-- attempt (EXISTS, so several attempt rows never duplicate a handled row).
-- OFFSET 0 plans the joins on their own, for throughput (START_TS index or scan, hash
-- joins), and sorts once: without it, when the window holds most of the table, the
-- planner walks the primary key to skip the sort and probes RESOURCE_ once per row,
-- several times slower. The rows are the same.
-- params: day_end, lookback_start, tenant_key
SELECT h.agent_id,
       h.media,
       h.start_ts,
       (h.call_attempt_id IS NOT NULL AND EXISTS (
            SELECT 1 FROM contact_attempt_fact c
            WHERE c.call_attempt_id = h.call_attempt_id
              AND ($3::int IS NULL OR c.tenant_key = $3))) AS ocs
FROM (
    SELECT i.interaction_resource_id,
           r.resource_cfg_dbid::bigint AS agent_id,
           upper(coalesce(m.media_name_code, m.media_name)) AS media,
           i.start_ts::bigint AS start_ts,
           i.call_attempt_id
    FROM interaction_resource_fact i
    JOIN resource_ r ON r.resource_key = i.resource_key AND r.resource_type_code = 'AGENT'
    JOIN media_type m ON m.media_type_key = i.media_type_key
    WHERE i.talk_duration > 0
      AND i.start_ts >= $2
      AND i.start_ts < $1
      AND ($3::int IS NULL OR (i.tenant_key = $3 AND r.tenant_key = $3))
    OFFSET 0
) h
ORDER BY h.interaction_resource_id

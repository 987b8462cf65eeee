-- gvp_cdrs (SPEC §4): IVR call legs of one GVP Reporting Server connection that
-- intersect the billing day. The extract tags each row with that connection's location.
-- params: day_start, day_end, lookback_start
SELECT c.cdr_id::bigint AS cdr_id,
       c.callid::text AS callid,
       c.start_ts::bigint AS start_ts,
       c.end_ts::bigint AS end_ts
FROM gvp_cdr c
WHERE c.start_ts < $2
  AND c.start_ts >= $3
  AND (c.end_ts IS NULL OR c.end_ts > $1)
ORDER BY c.cdr_id

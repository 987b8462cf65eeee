-- gvp_cdrs (SPEC §4): IVR call legs of one GVP Reporting Server connection that
-- intersect the billing day. The extract tags each row with that connection's location.
-- Every row that started in the window is read unless it validly ended at or before the
-- day's start: one ending before it started is read and counted as rejected
-- end_before_start by the extract. An empty CALLID is null (SPEC §4). Rows
-- are ordered by CDR_ID, then every column (nulls last): of the rows sharing a CDR_ID the
-- extract keeps the first and counts the others as duplicate_key.
-- params: day_start, day_end, lookback_start
SELECT c.cdr_id::bigint AS cdr_id,
       nullif(c.callid, '')::text AS callid,
       c.start_ts::bigint AS start_ts,
       c.end_ts::bigint AS end_ts
FROM gvp_cdr c
WHERE c.start_ts < $2
  AND c.start_ts >= $3
  AND (c.end_ts IS NULL OR c.end_ts > $1 OR c.end_ts < c.start_ts)
ORDER BY 1, nullif(c.callid, '')::text COLLATE "C", 3, 4

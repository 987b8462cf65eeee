-- readiness (SPEC §8): the Info Mart ETL's high-water mark, epoch seconds UTC (NULL while
-- the ETL has committed nothing). One row, first column the mark. An operator may replace
-- this file per tenant (config key readiness_sql). Its `-- params:` line may name any of
-- day_start, day_end (epoch seconds of the billing day), tenant_key, bound as $1, $2, ...
-- in the order listed; values are never formatted into the text.
-- params:
SELECT max(a.max_chunk_ts)::bigint AS mark
FROM ctl_audit_log a

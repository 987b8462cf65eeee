-- The GVP Reporting Server CDR view bds reads (SPEC §2.2). The real GVP RS schema is
-- not public: an operator defines this as a view over their GVP RS database. bds
-- ships it as a table for its demo and tests.
CREATE TABLE IF NOT EXISTS gvp_cdr (
    cdr_id       bigint PRIMARY KEY,
    callid       text,
    ivr_profile  text,
    start_ts     integer,
    end_ts       integer NULL
);
CREATE INDEX IF NOT EXISTS gvp_cdr_start_ts ON gvp_cdr (start_ts);

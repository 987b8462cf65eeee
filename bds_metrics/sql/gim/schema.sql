-- The Genesys Info Mart subset that bds reads (SPEC §2.1). Names as in the GIM
-- physical data model, unquoted (lower case in PostgreSQL). A real Info Mart has many
-- more columns; bds's queries need none of them. Indexes are those a real Info Mart
-- has on the columns the datasets filter on.
CREATE TABLE IF NOT EXISTS media_type (
    media_type_key   integer PRIMARY KEY,
    media_name       text,
    media_name_code  text
);

CREATE TABLE IF NOT EXISTS resource_ (
    resource_key        integer PRIMARY KEY,
    tenant_key          integer,
    resource_type_code  text,
    resource_name       text,
    employee_id         text,
    switch_name         text NULL,
    resource_cfg_dbid   integer
);

CREATE TABLE IF NOT EXISTS sm_res_session_fact (
    sm_res_session_fact_key  bigint PRIMARY KEY,
    tenant_key               integer,
    media_type_key           integer,
    resource_key             integer,
    start_ts                 integer,
    end_ts                   integer NULL,
    total_duration           integer,
    active_flag              smallint
);
CREATE INDEX IF NOT EXISTS sm_res_session_fact_start_ts ON sm_res_session_fact (start_ts);

CREATE TABLE IF NOT EXISTS interaction_type (
    interaction_type_key   integer PRIMARY KEY,
    interaction_type_code  text
);

CREATE TABLE IF NOT EXISTS interaction_fact (
    interaction_id         bigint PRIMARY KEY,
    tenant_key             integer,
    media_type_key         integer,
    interaction_type_key   integer,
    media_server_ixn_guid  text,
    source_address         text,
    target_address         text,
    start_ts               integer,
    end_ts                 integer NULL
);
CREATE INDEX IF NOT EXISTS interaction_fact_start_ts ON interaction_fact (start_ts);

CREATE TABLE IF NOT EXISTS interaction_resource_fact (
    interaction_resource_id  bigint PRIMARY KEY,
    interaction_id           bigint,
    tenant_key               integer,
    resource_key             integer,
    media_type_key           integer,
    start_ts                 integer,
    end_ts                   integer NULL,
    talk_duration            integer,
    call_attempt_id          text NULL
);
CREATE INDEX IF NOT EXISTS interaction_resource_fact_start_ts ON interaction_resource_fact (start_ts);
CREATE INDEX IF NOT EXISTS interaction_resource_fact_interaction_id ON interaction_resource_fact (interaction_id);

CREATE TABLE IF NOT EXISTS contact_attempt_fact (
    contact_attempt_fact_key  bigint PRIMARY KEY,
    tenant_key                integer,
    call_attempt_id           text,
    start_ts                  integer,
    end_ts                    integer NULL
);
CREATE INDEX IF NOT EXISTS contact_attempt_fact_call_attempt_id ON contact_attempt_fact (call_attempt_id);

CREATE TABLE IF NOT EXISTS gidb_g_login_session_mm (
    id              bigint PRIMARY KEY,
    loginsessionid  text,
    agentid         integer,
    tenantid        integer,
    created_ts      integer,
    terminated_ts   integer NULL
);
CREATE INDEX IF NOT EXISTS gidb_g_login_session_mm_created_ts ON gidb_g_login_session_mm (created_ts);

CREATE TABLE IF NOT EXISTS gidb_gc_agent (
    id          integer PRIMARY KEY,
    tenantid    integer,
    folderid    integer NULL,
    username    text,
    employeeid  text,
    status      integer
);

CREATE TABLE IF NOT EXISTS gidb_gc_folder (
    id        integer PRIMARY KEY,
    tenantid  integer,
    name      text,
    folderid  integer NULL,
    status    integer
);

-- The ETL's audit of committed transactions: max(max_chunk_ts) is the high-water mark
-- that readiness waits for (SPEC §2.1, §8).
CREATE TABLE IF NOT EXISTS ctl_audit_log (
    audit_key     bigint PRIMARY KEY,
    job_id        text,
    max_chunk_ts  integer NULL,
    created_ts    integer
);

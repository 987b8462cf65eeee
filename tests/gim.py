"""Hand-made Info Mart rows for tests: insert plain tuples into the real schema."""

from __future__ import annotations

import psycopg

COLUMNS = {
    "media_type": "media_type_key, media_name, media_name_code",
    "resource_": "resource_key, tenant_key, resource_type_code, resource_name, employee_id, "
                 "switch_name, resource_cfg_dbid",
    "sm_res_session_fact": "sm_res_session_fact_key, tenant_key, media_type_key, resource_key, "
                           "start_ts, end_ts, total_duration, active_flag",
    "interaction_type": "interaction_type_key, interaction_type_code",
    "interaction_fact": "interaction_id, tenant_key, media_type_key, interaction_type_key, "
                        "media_server_ixn_guid, source_address, target_address, start_ts, end_ts",
    "interaction_resource_fact": "interaction_resource_id, interaction_id, tenant_key, "
                                 "resource_key, media_type_key, start_ts, end_ts, "
                                 "talk_duration, call_attempt_id",
    "contact_attempt_fact": "contact_attempt_fact_key, tenant_key, call_attempt_id, start_ts, "
                            "end_ts",
    "gidb_g_login_session_mm": "id, loginsessionid, agentid, tenantid, created_ts, "
                               "terminated_ts",
    "gidb_gc_agent": "id, tenantid, folderid, username, employeeid, status",
    "gidb_gc_folder": "id, tenantid, name, folderid, status",
    "gvp_cdr": "cdr_id, callid, ivr_profile, start_ts, end_ts",
    "ctl_audit_log": "audit_key, job_id, max_chunk_ts, created_ts",
}

VOICE, CHAT = 1, 2
# An ETL high-water mark past every test's data (2033-05-18), so that readiness
# (SPEC §8) lets the hand-made days bill; tests of readiness insert their own marks.
MARK_PAST_DATA = 2_000_000_000
BASE = {
    "media_type": [(1, "Voice", "VOICE"), (2, "Chat", "CHAT"), (3, "E-mail", "EMAIL")],
    "interaction_type": [(1, "INBOUND"), (2, "OUTBOUND"), (3, "INTERNAL")],
    "ctl_audit_log": [(1, "test_etl", MARK_PAST_DATA, MARK_PAST_DATA)],
}


def set_mark(dsn: str, mark: int | None, key: int = 1) -> None:
    """Record an ETL transaction with high-water mark `mark` (CTL_AUDIT_LOG)."""
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("DELETE FROM ctl_audit_log")
        if mark is not None:
            c.execute("INSERT INTO ctl_audit_log (audit_key, job_id, max_chunk_ts, created_ts) "
                      "VALUES (%s, 'test_etl', %s, %s)", (key, mark, mark))


def insert(dsn: str, rows: dict[str, list[tuple]], base: bool = True, **connect: str) -> None:
    """`connect`: extra libpq parameters, e.g. client_encoding="LATIN1" to store the
    latin-1 bytes of str values as they are in a SQL_ASCII database."""
    data = {**BASE, **rows} if base else rows
    with psycopg.connect(dsn, autocommit=True, **connect) as c, c.cursor() as cur:
        for table, values in data.items():
            if not values:
                continue
            cols = COLUMNS[table]
            marks = ", ".join(["%s"] * len(cols.split(",")))
            if table == "ctl_audit_log" and rows.get(table) is None:
                # the default mark (BASE), once per database however often rows are added
                cur.execute("SELECT count(*) FROM ctl_audit_log WHERE job_id = 'test_etl'")
                if cur.fetchone()[0]:
                    continue
            cur.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", values)

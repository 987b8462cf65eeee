"""The DAG folder: one DAG per tenant, the right timetable and shape, cheap parsing."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DAGS = REPO / "bds_airflow" / "dags"
pytestmark = pytest.mark.usefixtures("airflow_db")  # Airflow configured before its import
DAG_FILES = sorted(DAGS.glob("bds_tenants_*_of_*.py"))

CONFIG = """
defaults: {output_root: /tmp/bds-dagtest/out, staging_root: /tmp/bds-dagtest/st, retries: 4}
tenants:
  - id: acme
    name: Acme
    production_date: 2026-01-01
    timezone: America/New_York
    metrics: [seats_chat, seats_outbound, gvp_ports, gvp_minutes]
    regions: [{code: us, locations: [{code: d, switches: []}]}]
    business_units: [{id: acme_BU_1, name: Sales}]
  - id: globex
    name: Globex
    production_date: 2026-02-15
    metrics: [seats_chat]
    retries: 0
    regions: [{code: eu, locations: [{code: d, switches: []}]}]
"""


@pytest.fixture
def bag(tmp_path, monkeypatch):
    cfg = tmp_path / "bds.yaml"
    cfg.write_text(CONFIG)
    monkeypatch.setenv("BDS_CONFIG", str(cfg))
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_one_dag_per_tenant_without_import_errors(bag):
    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == ["bds_acme", "bds_billing_days", "bds_globex"]


def test_timetable_interval_and_start(bag):
    from bds_airflow.timetable import BillingDayTimetable

    dag = bag.get_dag("bds_acme")
    assert isinstance(dag.timetable, BillingDayTimetable)
    import pendulum

    assert dag.start_date == pendulum.datetime(2026, 1, 1, tz="America/New_York")
    # the core timetable the scheduler uses for this DAG: a manual run whose logical
    # date is in local day D bills D (23 h on the spring DST change), never D-1
    from airflow.serialization.encoders import coerce_to_core_timetable

    core = coerce_to_core_timetable(dag.timetable)
    info = core.infer_manual_data_interval(
        run_after=pendulum.datetime(2026, 3, 8, 13, 30, tz="America/New_York"))
    assert info.start == pendulum.datetime(2026, 3, 8, tz="America/New_York")
    assert (info.end - info.start).in_hours() == 23
    assert core.summary == "billing day (America/New_York)"
    assert "Trigger DAG" in dag.doc_md and "bds run -t acme" in dag.doc_md


def test_task_groups_and_tasks(bag):
    acme = bag.get_dag("bds_acme")
    ids = set(acme.task_ids)
    assert {"wait_settled", "extract.sm_fact", "extract.mm_sessions", "extract.handled",
            "extract.agent_resource", "extract.folder", "extract.voice_calls",
            "extract.gvp_cdrs", "extract.tfn_durations", "extract.pstn_durations",
            "attribute.agent_bu", "attribute.cdr_bu", "compute.seats_chat",
            "compute.seats_outbound", "compute.gvp_ports", "compute.gvp_minutes",
            "emit.daily_files", "monthly.month_files"} <= ids
    globex = bag.get_dag("bds_globex")
    assert "extract.gvp_cdrs" not in globex.task_ids  # no GVP metric, no GVP connection
    assert "compute.gvp_ports" not in globex.task_ids


def test_the_dag_is_the_day_plan_one_operator_class_per_kind(bag):
    """build_dag turns plan.day_plan into tasks (what pipeline.run_day walks): every
    step is a task of its kind's class, upstream of it exactly the steps it reads."""
    from bds_metrics.config import load_config
    from bds_metrics.plan import day_plan, leaves

    cfg = load_config()
    for tenant in ("acme", "globex"):
        t = cfg.tenant(tenant)
        dag = bag.get_dag(f"bds_{tenant}")
        plan = day_plan(t)
        assert set(dag.task_ids) == {"wait_settled"} | {st.task_id for st in plan}
        for st in plan:
            task = dag.get_task(st.task_id)
            assert type(task).__name__ == f"Bds{st.kind.capitalize()}Operator", st.task_id
            want = set(leaves(st.inputs)) | ({"wait_settled"} if st.kind == "extract" else set())
            assert task.upstream_task_ids == want, st.task_id
            assert (task.max_active_tis_per_dag == 1) == st.serial
    kinds = {type(task).__name__ for task in bag.get_dag("bds_acme").tasks}
    assert kinds == {"ReadinessSensor", "BdsExtractOperator", "BdsDeriveOperator",
                     "BdsAttributeOperator", "BdsComputeOperator", "BdsEmitOperator",
                     "BdsMonthlyOperator"}


def test_retries_with_exponential_backoff(bag):
    t = bag.get_dag("bds_acme").get_task("extract.sm_fact")
    assert t.retries == 4 and t.retry_exponential_backoff
    assert bag.get_dag("bds_globex").get_task("extract.sm_fact").retries == 0
    month = bag.get_dag("bds_acme").get_task("monthly.month_files")
    assert month.max_active_tis_per_dag == 1


def test_readiness_starts_in_the_triggerer_and_extracts_queue_in_their_pool(bag):
    """SPEC §8: the wait holds no worker slot (the scheduler hands it straight to the
    triggerer, as the serialized DAG the scheduler reads says); extracts run in the pool
    of their connection; every other task has an execution timeout."""
    from airflow.serialization.serialized_objects import DagSerialization

    dag = DagSerialization.from_dict(DagSerialization.to_dict(bag.get_dag("bds_acme")))
    s = dag.get_task("wait_settled")
    assert s.start_from_trigger is True
    assert s.start_trigger_args.trigger_cls == "bds_airflow.readiness.ReadinessTrigger"
    assert s.start_trigger_args.next_method == "execute_complete"
    assert s.execution_timeout is None and s.retries == 0
    ex = dag.get_task("extract.sm_fact")
    assert ex.pool == "bds_bds_gimdb"
    assert ex.execution_timeout.total_seconds() == 7200
    assert dag.get_task("compute.seats_chat").pool == "default_pool"


def test_parsing_imports_no_pandas_and_opens_no_database(tmp_path):
    cfg = tmp_path / "bds.yaml"
    cfg.write_text(CONFIG)
    code = textwrap.dedent(f"""
        import sys, runpy
        import airflow.sdk  # Airflow itself, before the DAG file
        before = set(sys.modules)
        for f in {[str(f) for f in DAG_FILES]!r}:
            runpy.run_path(f)
        new = set(sys.modules) - before
        bad = sorted(m for m in new if m.split(".")[0] in
                     ("pandas", "pyarrow", "numpy", "psycopg", "psycopg2", "adbc_driver_postgresql",
                      "adbc_driver_manager", "sqlalchemy"))
        print("BAD", bad)
    """)
    env = {**os.environ, "BDS_CONFIG": str(cfg)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "BAD []" in out.stdout, out.stdout


def test_bad_config_is_an_import_error_with_one_clear_message(tmp_path, monkeypatch):
    cfg = tmp_path / "bds.yaml"
    cfg.write_text(CONFIG.replace("timezone: America/New_York", "timezone: Mars/Olympus"))
    monkeypatch.setenv("BDS_CONFIG", str(cfg))
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.dag_ids == ["bds_billing_days"]  # reads BDS_CONFIG only when its task runs
    # every part file says the same thing: no DAG file stays up with the old DAGs
    assert sorted(bag.import_errors) == [str(f) for f in DAG_FILES]
    for err in bag.import_errors.values():
        assert f"{cfg}: tenant 'acme': key timezone: unknown time zone 'Mars/Olympus'" in err


def test_a_task_parse_builds_only_its_own_dag(tmp_path):
    """Airflow names the DAG of the task it runs in the parsing context."""
    cfg = tmp_path / "bds.yaml"
    cfg.write_text(CONFIG)
    code = textwrap.dedent(f"""
        import runpy
        ns = {{}}
        for f in {[str(f) for f in DAG_FILES]!r}:
            ns.update(runpy.run_path(f))
        print("DAGS", sorted(k for k in ns if k.startswith("bds_")))
    """)
    env = {**os.environ, "BDS_CONFIG": str(cfg), "_AIRFLOW_PARSING_CONTEXT_DAG_ID": "bds_globex",
           "_AIRFLOW_PARSING_CONTEXT_TASK_ID": "extract.sm_fact"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert "DAGS ['bds_globex']" in out.stdout, out.stdout + out.stderr[-2000:]


def test_tenants_are_spread_over_the_part_files_each_in_exactly_one(tmp_path, monkeypatch):
    from bds_airflow.dag_factory import file_part, tenant_dags, tenant_part

    assert [file_part(str(f)) for f in DAG_FILES] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    cfg = tmp_path / "bds.yaml"
    ids = [f"t{i:03d}" for i in range(40)]
    tenants = "".join(f"""
  - id: {i}
    name: {i}
    production_date: 2026-01-01
    metrics: [seats_chat]
    regions: [{{code: eu, locations: [{{code: d, switches: []}}]}}]""" for i in ids)
    cfg.write_text("defaults: {output_root: /tmp/o, staging_root: /tmp/s}\ntenants:" + tenants)
    built = [set(tenant_dags(str(cfg), str(f))) for f in DAG_FILES]
    assert sorted(d for part in built for d in part) == [f"bds_{i}" for i in ids]
    assert all(part for part in built)  # 40 tenants reach every part
    # the part is a stable hash of the id (CRC-32), not Python's per-process hash()
    assert [tenant_part(i, 4) for i in ("acme", "globex", "t000", "t001")] == [3, 3, 1, 3]
    with pytest.raises(ValueError, match="bds_tenants_<k>_of_<n>.py"):
        file_part("dags/bds_tenants_5_of_4.py")


def test_bds_run_parses_only_the_tenants_own_file_and_dag(tmp_path, monkeypatch):
    from bds_airflow.runner import PARSING_DAG_ID, dag_file_of, load_dag
    from bds_metrics.config import load_config

    cfg = tmp_path / "bds.yaml"
    cfg.write_text(CONFIG)
    monkeypatch.setenv("BDS_CONFIG", str(cfg))
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(DAGS))
    t = load_config(str(cfg)).tenants[1]
    assert dag_file_of(t, str(DAGS)) == str(DAGS / "bds_tenants_3_of_4.py")
    dag = load_dag(t)
    assert dag.dag_id == "bds_globex" and PARSING_DAG_ID not in os.environ


def test_run_options_come_from_the_run_conf_and_must_be_booleans(tmp_path):
    from bds_airflow.steps import run_option
    from bds_metrics.config import ConfigError, load_config

    cfg = tmp_path / "bds.yaml"
    cfg.write_text(CONFIG.replace("    retries: 0\n",
                                  "    retries: 0\n    wait_for_settle: false\n"))
    acme, globex = load_config(str(cfg)).tenants
    assert run_option(acme, None, "wait_for_settle") is True  # scheduled: the config
    assert run_option(globex, {}, "wait_for_settle") is False
    assert run_option(acme, {"wait_for_settle": False}, "wait_for_settle") is False
    assert run_option(acme, {}, "reextract_config") is False
    assert run_option(acme, {"reextract_config": True}, "reextract_config") is True
    with pytest.raises(ConfigError, match="tenant 'acme': run conf key reextract_config: "
                                          "must be true or false, not 'yes'"):
        run_option(acme, {"reextract_config": "yes"}, "reextract_config")

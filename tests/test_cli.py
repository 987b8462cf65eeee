"""`bds` as a person meets it: every option explained, one exit code per kind of mistake
in every command, an empty `bds verify` says why. In process (`cli.main`), no database,
no Airflow start-up: these run in the pure tier."""

from __future__ import annotations

import argparse

import pytest

from bds_airflow import cli
from tests.test_config import VALID, write

COMMANDS = [["config", "validate"], ["units"], ["run"], ["report"], ["verify"], ["demo"]]


def _subparsers(p: argparse.ArgumentParser):
    for a in p._actions:
        if isinstance(a, argparse._SubParsersAction):
            for name, sp in a.choices.items():
                yield name, sp
                yield from ((f"{name} {n}", s) for n, s in _subparsers(sp))


def test_every_option_of_every_command_is_explained():
    seen = set()
    for name, sp in _subparsers(cli.build_parser()):
        seen.add(name)
        assert sp.description, name
        for a in sp._actions:
            if isinstance(a, argparse._SubParsersAction):
                continue
            assert a.help and a.help != argparse.SUPPRESS, (name, a.option_strings)
            if a.nargs != 0 and a.option_strings:  # takes a value: a named metavar
                assert a.metavar and a.metavar.isupper() and "_" not in a.metavar, (name, a)
    assert {" ".join(c) for c in COMMANDS} <= seen


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_exits_0_and_shows_no_internal_names(command, capsys):
    assert cli.main([*command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "FROM_" not in out and "exit codes" in out
    if command[0] in ("run", "report", "verify"):
        assert "--from DATE" in out and "-t TENANT" in out


@pytest.fixture
def config(tmp_path, monkeypatch):
    text = VALID.replace("/srv/acme/out", str(tmp_path / "out"))
    monkeypatch.setenv("BDS_CONFIG", str(write(tmp_path, text)))
    monkeypatch.setenv("PYTHONWARNINGS", "default")  # keep pytest's warning capture as is
    return tmp_path


RANGED = [["run"], ["report"], ["verify"]]


@pytest.mark.parametrize("command", RANGED, ids=" ".join)
def test_the_same_mistake_gives_the_same_exit_code(command, config, capsys):
    t = ["-t", "acme"]
    cases = [
        (2, [*t, "--from", "2026-02-30", "--to", "2026-03-01"], "not a date"),
        (2, [*t, "--from", "2026-03-02", "--to", "2026-03-01"], "is before"),
        (2, ["-t", "nosuch", "--from", "2026-03-01", "--to", "2026-03-01"], "no tenant 'nosuch'"),
        (2, ["--from", "2026-03-01", "--to", "2026-03-01"], "-t/--tenant"),
        (1, [*t, "--from", "2026-03-01", "--to", "2026-03-01", "--config",
             str(write(config, "tenants: []\n", "bad.yaml"))], "configuration error"),
    ]
    for code, args, said in cases:
        assert cli.main([*command, *args]) == code, (command, args)
        err = capsys.readouterr().err
        assert said in err and err.count("\n") <= 3, (command, args, err)


def test_unknown_tenant_and_bad_config_in_units_and_validate(config, capsys):
    assert cli.main(["units", "-t", "nosuch"]) == 2
    assert "bds units: " in capsys.readouterr().err
    bad = str(write(config, "tenants: []\n", "bad.yaml"))
    for command in (["config", "validate"], ["units", "-t", "acme"]):
        assert cli.main([*command, "--config", bad]) == 1, command
        assert "configuration error" in capsys.readouterr().err


def test_run_refuses_days_it_cannot_bill_as_a_usage_mistake(config, capsys):
    assert cli.main(["run", "-t", "acme", "--from", "2025-12-31"]) == 2  # before production
    assert "production date 2026-01-01" in capsys.readouterr().err
    assert cli.main(["run", "-t", "acme", "--from", "2999-01-01"]) == 2  # not ended
    assert "has not ended yet" in capsys.readouterr().err


def test_verify_with_nothing_to_verify_says_why(config, capsys):
    out = config / "out" / "acme"
    assert cli.main(["verify", "-t", "acme"]) == 1
    err = capsys.readouterr().err
    assert "nothing to verify" in err and "folder at all" in err and str(out) in err
    assert cli.main(["verify", "-t", "acme", "--from", "2026-03-01", "--to", "2026-03-02"]) == 1
    assert ("tenant 'acme' has no daily or monthly folder from 2026-03-01 to 2026-03-02 "
            f"under {out}") in capsys.readouterr().err


def test_demo_ui_env_file_gives_a_shell_the_demo_airflow(tmp_path):
    """`bds demo --ui` writes .bds/demo/env.sh: sourced in bash, the `airflow` and `bds`
    commands see the running Airflow's metadata DB, DAG folder and connections (values
    with spaces, quotes and `$` survive)."""
    import subprocess

    from bds_airflow.demo_ui import _write_env_file

    env = {"AIRFLOW_HOME": str(tmp_path / "air flow"), "BDS_CONFIG": "/x/bds.yaml",
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg2://u:p$w'd@/db?host=/s",
           "AIRFLOW_CONN_BDS_DEMO_GIM": '{"conn_type": "postgres", "host": "/tmp/x"}',
           "PATH": "/usr/bin", "UNRELATED": "no"}
    path = _write_env_file(tmp_path / "env.sh", env)
    assert oct(path.stat().st_mode & 0o777) == "0o600"  # it holds a password
    keys = ["AIRFLOW_HOME", "BDS_CONFIG", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
            "AIRFLOW_CONN_BDS_DEMO_GIM", "UNRELATED"]
    out = subprocess.run(["bash", "-c", f"source {path} && " + " && ".join(
        f'printf "%s\\n" "${{{k}-unset}}"' for k in keys)], capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin"}, check=True).stdout.splitlines()
    assert out == [env[k] for k in keys[:-1]] + ["unset"]

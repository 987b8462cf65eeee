"""docker-compose.yaml and Dockerfile, checked without a Docker engine.

`docker compose config` needs the compose plugin, which this machine lacks (it runs too
when present): the file is parsed here and its services, images, commands, shared
settings, dependencies, volumes and the bds configuration it points at are checked.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yaml"
IMAGE_ROOT = "/opt/bds/"  # WORKDIR of the Dockerfile: the repository's files live here

pytestmark = pytest.mark.xdist_group("distributed")

AIRFLOW = {  # service: what its command runs
    "airflow-apiserver": ["airflow", "api-server"],
    "airflow-scheduler": ["airflow", "scheduler"],
    "airflow-dag-processor": ["airflow", "dag-processor"],
    "airflow-triggerer": ["airflow", "triggerer"],
    "airflow-worker-1": ["airflow", "celery", "worker"],
    "airflow-worker-2": ["airflow", "celery", "worker"],
}
OTHERS = {"postgres", "redis", "infomart", "s3", "airflow-init", "bds-init"}


def _interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's `${VAR}`, `${VAR:-default}` and `$$`; an unset variable without a
    default is an error here (compose would substitute an empty string)."""
    if isinstance(value, dict):
        return {k: _interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name, default = m.group(1), m.group(3)
        if name in env:
            return env[name]
        if default is None:
            raise AssertionError(f"variable {name} has no default in docker-compose.yaml")
        return default

    return re.sub(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}", sub, value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc = yaml.safe_load(COMPOSE.read_text())
    return _interpolate(doc, {})


def _env(svc: dict[str, Any]) -> dict[str, str]:
    env = svc.get("environment", {})
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    return {k: str(v) for k, v in env.items()}


def test_services_images_and_build(compose):
    services = compose["services"]
    assert set(AIRFLOW) | OTHERS <= set(services), sorted(services)
    for name, svc in services.items():
        image = svc.get("image")
        assert image or svc.get("build"), name
        if image:  # pinned: a tag, and not `latest`
            repo, _, tag = image.rpartition(":")
            assert repo and tag and tag != "latest", f"{name}: {image}"
    bds_image = services["airflow-scheduler"]["image"]
    assert bds_image.endswith(":3.3.2")
    for name in [*AIRFLOW, "airflow-init", "s3", "bds-init"]:
        svc = services[name]
        assert svc["image"] == bds_image, name
        assert svc["build"] == {"context": ".", "dockerfile": "Dockerfile"}, name
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["infomart"]["image"].startswith("postgres:")
    assert services["redis"]["image"].startswith("redis:")


def test_dockerfile_installs_the_pinned_requirements():
    text = (REPO / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11[\w.-]*$", text, re.M)
    assert re.search(r"^COPY requirements\.txt", text, re.M)
    assert re.search(r"install .*-r requirements\.txt", text)
    pins = dict(line.split("==", 1) for line in (REPO / "requirements.txt").read_text().split()
                if "==" in line)
    assert pins["apache-airflow"] == "3.3.2"
    for p in ("apache-airflow-providers-celery", "apache-airflow-providers-amazon",
              "apache-airflow-providers-postgres", "s3fs", "redis", "celery"):
        assert p in pins, p
    # moto's S3 server (compose's local store) at the test lock's version, not in the
    # runtime lock; the bds code goes in as the wheel, never as an editable tree.
    test_pins = dict(line.split("==", 1) for line in
                     (REPO / "requirements-test.txt").read_text().split() if "==" in line)
    assert {"moto", "flask", "build"} <= set(test_pins) and not {"moto", "pytest"} & set(pins)
    assert re.search(r"install .*-c requirements-test\.txt moto", text)
    assert re.search(r"install .*/wheels/bds-\*\.whl", text) and " -e " not in text
    copied = set(re.findall(r"^COPY (\S+) ", text, re.M))
    for needed in ("bds_metrics", "bds_airflow"):
        assert needed in copied, needed
    ignored = {ln.strip() for ln in (REPO / ".dockerignore").read_text().splitlines()
               if ln.strip() and not ln.startswith("#")}
    assert ignored.isdisjoint({"bds_metrics", "bds_airflow", "requirements.txt",
                               "pyproject.toml"}), ignored
    assert {".venv", ".git"} <= ignored


def test_airflow_components_share_one_celery_setup(compose):
    services = compose["services"]
    envs = {name: _env(services[name]) for name in [*AIRFLOW, "airflow-init"]}
    for name, cmd in AIRFLOW.items():
        assert services[name]["command"][:len(cmd)] == cmd, name
    shared = ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET",
              "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__BROKER_URL",
              "AIRFLOW__CELERY__RESULT_BACKEND", "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
              "BDS_CONFIG")
    first = envs["airflow-scheduler"]
    for name, env in envs.items():
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        for key in shared:
            assert env[key] == first[key], f"{name}: {key}"
    assert len(base64.urlsafe_b64decode(first["AIRFLOW__CORE__FERNET_KEY"])) == 32
    assert first["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:")
    assert "@postgres:" in first["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert first["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql")
    assert "@postgres:" in first["AIRFLOW__CELERY__RESULT_BACKEND"]
    api_port = services["airflow-apiserver"]["command"][-1]
    assert first["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == (
        f"http://airflow-apiserver:{api_port}/execution/")
    # Two workers that tell apart: distinct container and Celery host names.
    w1, w2 = services["airflow-worker-1"], services["airflow-worker-2"]
    assert w1["hostname"] != w2["hostname"]
    assert w1["command"][-1] != w2["command"][-1]
    assert first["AIRFLOW__CORE__DAGS_FOLDER"] == IMAGE_ROOT + "dags"


def test_every_airflow_component_has_the_dag_processor_settings(compose):
    """The deployments' DAG processor settings (bds_airflow.airflow_env) in every
    Airflow service: parse on change, with room for 1000 tenants' part files."""
    from bds_airflow.airflow_env import DAG_PROCESSOR_SETTINGS

    for name in AIRFLOW:
        env = _env(compose["services"][name])
        for key, value in DAG_PROCESSOR_SETTINGS.items():
            assert env.get(key) == value, f"{name}: {key}"


def test_dependencies_and_volumes(compose):
    services = compose["services"]
    declared = set(compose.get("volumes") or {})
    used: set[str] = set()
    host_ports: list[str] = []
    for name, svc in services.items():
        deps = svc.get("depends_on") or {}
        for dep, spec in (deps.items() if isinstance(deps, dict) else ((d, {}) for d in deps)):
            assert dep in services and dep != name, f"{name} -> {dep}"
            cond = spec.get("condition", "service_started")
            assert cond in ("service_started", "service_healthy",
                            "service_completed_successfully"), f"{name} -> {dep}: {cond}"
            if cond == "service_healthy":
                assert "healthcheck" in services[dep], f"{dep} has no healthcheck"
            if cond == "service_completed_successfully":
                assert services[dep].get("restart") == "no", dep
        for v in svc.get("volumes") or []:
            source = v.split(":", 1)[0]
            if source.startswith((".", "/")):
                assert (REPO / source).exists(), f"{name}: bind mount {source} missing"
            else:
                assert source in declared, f"{name}: volume {source} not declared"
                used.add(source)
        for p in svc.get("ports") or []:
            host_ports.append(str(p).rsplit(":", 1)[0])
    assert used == declared, (used, declared)
    assert len(host_ports) == len(set(host_ports)), host_ports
    # The metadata DB and the Info Mart keep their data in volumes; logs are shared.
    assert any(v.startswith("postgres-db:") for v in services["postgres"]["volumes"])
    assert any(v.startswith("infomart-db:") for v in services["infomart"]["volumes"])
    for name in AIRFLOW:
        assert any(v.startswith("airflow-logs:") for v in services[name]["volumes"]), name
    auth = services["airflow-apiserver"]["volumes"]
    assert any(v.startswith("airflow-auth:") for v in auth)
    assert any(v.startswith("airflow-auth:") for v in services["airflow-init"]["volumes"])


def test_bds_configuration_uses_object_storage_and_defined_connections(compose, monkeypatch):
    import json

    from bds_metrics.config import GVP_METRICS, load_config

    services = compose["services"]
    env = _env(services["airflow-worker-1"])
    config = env["BDS_CONFIG"]
    assert config.startswith(IMAGE_ROOT)
    path = REPO / config[len(IMAGE_ROOT):]
    assert path.exists(), path
    monkeypatch.setenv("BDS_DEMO_ROOT", env["BDS_DEMO_ROOT"])
    cfg = load_config(path)
    conns = {k[len("AIRFLOW_CONN_"):].lower(): v for k, v in env.items()
             if k.startswith("AIRFLOW_CONN_")}
    s3_port = services["s3"]["command"][-1]
    for t in cfg.tenants:
        for root in (t.output_root, t.staging_root):
            m = re.fullmatch(r"s3://(\w+)@([a-z0-9.-]+)/\S+", root)
            assert m, f"{t.id}: {root} is not an object-storage URL"
            s3 = json.loads(conns[m.group(1)])
            assert s3["conn_type"] == "aws"
            assert s3["extra"]["endpoint_url"] == f"http://s3:{s3_port}"
        needed = {t.gimdb_conn_id}
        if set(t.metrics) & set(GVP_METRICS):
            needed |= {conn_id for conn_id, _ in t.gvp_sources()}
        for conn_id in needed:
            assert conn_id in conns, f"{t.id}: connection {conn_id} not defined"
            assert conns[conn_id].startswith("postgresql://") and "@infomart:" in conns[conn_id]


def test_docker_compose_config_when_available():
    docker = shutil.which("docker")
    if not docker or subprocess.run([docker, "compose", "version"], capture_output=True,
                                    timeout=30).returncode != 0:
        pytest.skip("no `docker compose` here; the file is checked by the tests above")
    proc = subprocess.run([docker, "compose", "-f", str(COMPOSE), "config", "-q"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr

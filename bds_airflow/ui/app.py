"""The Billing page's FastAPI app, mounted by the API server at `/bds` (SPEC §12).

Every route, the page and its static files included, requires an Airflow user: the JWT of
the UI's session cookie or an `Authorization: Bearer` token, checked by Airflow's own
`get_user` (401 without one, 403 for an invalid one). A tenant's data also requires read
access to its DAG `bds_<tenant>` from the auth manager (403 otherwise); the tenant list
holds only those tenants. Data comes from `bds_metrics.view` (stored results only) and,
for running/failed/waiting days, from Airflow's metadata DB.
"""

from __future__ import annotations

import datetime as dt
import os
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Annotated

from airflow.api_fastapi.core_api.security import GetUserDep, requires_authenticated
from fastapi import Depends, FastAPI, HTTPException, Query, Response
from fastapi.responses import FileResponse, HTMLResponse

STATIC = Path(str(files("bds_airflow.ui") / "static"))  # package data
_TYPES = {".js": "text/javascript", ".css": "text/css", ".md": "text/markdown",
          ".png": "image/png", ".svg": "image/svg+xml"}

app = FastAPI(title="bds billing", dependencies=[Depends(requires_authenticated())],
              docs_url=None, redoc_url=None, openapi_url=None)


def _config():
    path = os.environ.get("BDS_CONFIG", "")
    try:
        mtime = os.stat(path).st_mtime_ns
    except OSError:
        mtime = 0
    return _load(path, mtime)


@lru_cache(maxsize=2)
def _load(path: str, mtime: int):
    from bds_metrics.config import load_config

    from ..object_storage import install

    install()
    return load_config(path or None)


def _allowed(tenant_id: str, user) -> bool:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails

    return get_auth_manager().is_authorized_dag(
        method="GET", details=DagDetails(id=f"bds_{tenant_id}"), user=user)


def tenant_dep(tenant: str, user: GetUserDep):
    from bds_metrics.config import ConfigError

    try:
        t = _config().tenant(tenant)
    except (ConfigError, KeyError) as exc:
        raise HTTPException(404, f"no tenant {tenant!r}") from exc
    if not _allowed(t.id, user):
        raise HTTPException(403, f"no read access to DAG bds_{t.id}")
    return t


TenantDep = Annotated[object, Depends(tenant_dep)]


def _day(s: str | None, default: dt.date) -> dt.date:
    if not s:
        return default
    try:
        return dt.date.fromisoformat(s)
    except ValueError as exc:
        raise HTTPException(422, f"not a date (YYYY-MM-DD): {s!r}") from exc


@app.get("/", response_class=HTMLResponse)
def page() -> HTMLResponse:
    return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"),
                        headers={"Cache-Control": "no-store"})


@app.get("/static/{name}")
def static(name: str) -> FileResponse:
    path = STATIC / name
    if "/" in name or name.startswith(".") or not path.is_file() or name == "index.html":
        raise HTTPException(404, "no such file")
    return FileResponse(path, media_type=_TYPES.get(path.suffix, "application/octet-stream"))


@app.get("/api/tenants")
def tenants(user: GetUserDep) -> dict:
    from bds_metrics import view

    cfg = _config()
    return {"tenants": [view.overview(t) for t in cfg.tenants if _allowed(t.id, user)]}


def _runs(t, first: dt.date, last: dt.date) -> tuple[dict, str | None]:
    try:
        from ..run_states import latest_runs

        return latest_runs(t.id, t.timezone, first, last), None
    except Exception as exc:  # the page still shows what is stored
        return {}, f"Airflow runs unavailable: {type(exc).__name__}"


@app.get("/api/tenants/{tenant}/calendar")
def calendar(t: TenantDep, from_: Annotated[str | None, Query(alias="from")] = None,
             to: str | None = None) -> dict:
    from bds_metrics import status, view

    last = _day(to, status.last_due_day(t))
    first = max(_day(from_, last - dt.timedelta(days=89)), t.production_date)
    if (last - first).days > 3 * 366:
        raise HTTPException(422, "at most three years at once")
    runs, note = _runs(t, first, last)
    return {**view.calendar(t, first, last, runs), "airflow": note or "read"}


@app.get("/api/tenants/{tenant}/periods/{label}")
def period(t: TenantDep, label: str) -> dict:
    from bds_metrics import view

    try:
        view.kind_of(label)
    except ValueError as exc:
        raise HTTPException(422, f"not a day or month: {label!r}") from exc
    return view.period(t, label)


@app.get("/api/tenants/{tenant}/periods/{label}/files/{name}")
def download(t: TenantDep, label: str, name: str, version: int | None = None) -> Response:
    from bds_metrics import view

    try:
        data = view.version_file(t, label, name, version)
    except ValueError as exc:
        raise HTTPException(422, f"not a day or month: {label!r}") from exc
    if data is None:
        raise HTTPException(404, f"{name} is not a file of {t.id} {label}"
                            f"{f' v{version}' if version else ''}")
    media = "application/json" if name.endswith(".json") else "text/csv; charset=utf-8"
    return Response(data, media_type=media, headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


@app.get("/api/tenants/{tenant}/series")
def series(t: TenantDep, from_: Annotated[str | None, Query(alias="from")] = None,
           to: str | None = None, scope: str = "") -> dict:
    from bds_metrics import status, view

    last = _day(to, status.last_due_day(t))
    first = max(_day(from_, last - dt.timedelta(days=89)), t.production_date)
    if (last - first).days > 3 * 366:
        raise HTTPException(422, "at most three years at once")
    if scope and scope not in {s for s, _ in t.scopes()}:
        raise HTTPException(404, f"no scope {scope!r} in tenant {t.id}")
    return view.series(t, first, last, scope)

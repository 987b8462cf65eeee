"""Asset events of published periods (SPEC §8 Assets), and the month deadline check.

`emit.daily_files` carries the AssetAlias `bds_<tenant>_daily` and attaches to it one
event of `bds://<tenant>/daily` per published day, its extra naming the period and the
folder; `monthly.month_files` does the same with `bds_<tenant>_monthly` and
`bds://<tenant>/monthly`, only when it wrote the month.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from bds_metrics.config import TenantConfig


def daily_uri(tenant_id: str) -> str:
    return f"bds://{tenant_id}/daily"


def monthly_uri(tenant_id: str) -> str:
    return f"bds://{tenant_id}/monthly"


def monthly_alias(tenant_id: str) -> str:
    return f"bds_{tenant_id}_monthly"


def asset(uri: str) -> Any:
    from airflow.sdk import Asset

    return Asset(name=uri, uri=uri, group="bds")


def daily_alias(tenant_id: str) -> str:
    return f"bds_{tenant_id}_daily"


def ensure_models(tenants: list[TenantConfig]) -> list[str]:
    """Create the metadata DB rows (AssetModel) of the tenants' daily and monthly assets
    that do not exist yet, and link each to its alias once the DAG processor has made the
    alias's row; returns the aliases still to link (their DAG not parsed yet: call
    again).

    The DAGs declare aliases only (see `outlets`), so Airflow creates an asset's row when
    a task first emits an event of it; two tasks emitting a tenant's first events at the
    same time (catch-up, a backfill) both try, and the loser's task is set to failed
    (unique key `idx_asset_name_uri_unique`); the same for the alias -> asset link
    (`asset_alias_asset_pkey`). Created beforehand, by the DAG processor's
    configuration watcher (`bds_airflow.preload`) and by `bds run`, the rows exist before
    any task runs. Safe beside another process doing the same."""
    from airflow.models.asset import AssetAliasModel, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select
    from sqlalchemy.exc import IntegrityError

    pairs = [(alias, uri) for t in tenants
             for alias, uri in ((daily_alias(t.id), daily_uri(t.id)),
                                (monthly_alias(t.id), monthly_uri(t.id)))]
    with create_session() as s:
        have = set(s.scalars(select(AssetModel.uri).where(AssetModel.uri.like("bds://%"))))
        linked = set(s.execute(select(AssetAliasModel.name, AssetModel.uri).join(
            AssetAliasModel.assets).where(AssetModel.uri.like("bds://%"))).tuples())
    missing = [u for _, u in pairs if u not in have]
    for i in range(0, len(missing), 500):
        chunk = missing[i:i + 500]
        try:
            with create_session() as s:
                s.add_all([AssetModel(name=u, uri=u, group="bds") for u in chunk])
        except IntegrityError:  # another process made some meanwhile: one at a time
            for u in chunk:
                try:
                    with create_session() as s:
                        s.add(AssetModel(name=u, uri=u, group="bds"))
                except IntegrityError:
                    pass
    # The alias -> asset link too: Airflow adds it on the first event through the alias,
    # and two first events at once collide on it (asset_alias_asset_pkey) the same way.
    # The alias's own row is the DAG processor's to make (from the DAG's outlets).
    pending = []
    for alias, uri in pairs:
        if (alias, uri) in linked:
            continue
        try:
            with create_session() as s:
                asset = s.scalar(select(AssetModel).where(AssetModel.name == uri,
                                                          AssetModel.uri == uri))
                model = s.scalar(select(AssetAliasModel).where(AssetAliasModel.name == alias))
                if model is None or asset is None:
                    pending.append(alias)
                elif model not in asset.aliases:
                    asset.aliases.append(model)
        except IntegrityError:  # linked by another process meanwhile
            pass
    return pending


def outlets(t: TenantConfig, step: str) -> list[Any]:
    """Aliases, not Assets, at parse time: an Asset of the `bds://` scheme makes Airflow
    load its providers manager to look for a URI normaliser (SQLAlchemy and seconds per
    parse); the alias gets its Asset event when the task runs."""
    from airflow.sdk import AssetAlias

    if step == "daily_files":
        return [AssetAlias(daily_alias(t.id))]
    if step == "month_files":
        return [AssetAlias(monthly_alias(t.id))]
    return []


def after_step(op: Any, context: Any, t: TenantConfig, day: dt.date, result: str) -> str:
    """Called with each step's result: emits the period's asset event."""
    from bds_metrics.days import billing_day, billing_month

    if op.step == "daily_files":
        from airflow.sdk import AssetAlias

        p = billing_day(day, t.timezone)
        context["outlet_events"][AssetAlias(daily_alias(t.id))].add(
            asset(daily_uri(t.id)),
            extra={"tenant": t.id, "period": p.label, "kind": "daily", "folder": result})
    elif op.step == "month_files":
        from airflow.sdk import AssetAlias

        p = billing_month(day, t.timezone)
        context["outlet_events"][AssetAlias(monthly_alias(t.id))].add(
            asset(monthly_uri(t.id)),
            extra={"tenant": t.id, "period": p.label, "kind": "monthly", "folder": result})
    return result


def after_failure(op: Any, context: Any, t: TenantConfig, exc: BaseException) -> None:
    """A month step skipped for missing days (steps._month_files): the month-late alert
    when the month is past its deadline (bds_airflow.alerts.month_overdue)."""
    from airflow.sdk.exceptions import AirflowSkipException

    if op.step != "month_files" or not isinstance(exc, AirflowSkipException):
        return
    from bds_metrics import pipeline
    from bds_metrics.days import billing_day_of

    from .alerts import month_overdue

    day = billing_day_of(context["data_interval_start"], t.timezone)
    _, missing = pipeline.month_status(t, day)
    month_overdue(t, day, missing, context)

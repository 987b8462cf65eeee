"""One Airflow pool per source connection (SPEC §8 Protecting the sources).

Every extract task of every tenant runs in the pool of the connection it reads,
`bds_<conn_id>`, so tenants that share one Info Mart (or GVP database) queue for its
slots instead of opening hundreds of sessions at once. The pools' sizes come from the
configuration (`defaults.pool_size`, `defaults.pool_sizes: {conn_id: n}`).

Airflow does not create pools by itself and leaves a task of a missing pool "scheduled"
for ever (the scheduler logs "Tasks using non-existent pool"). The DAG processor's
configuration watcher (`bds_airflow.preload`) creates or resizes them when it starts and
after each configuration change; `bds pools` does the same by hand, `bds pools --check`
lists the missing or mis-sized ones and exits 1, and `bds run` creates them.
"""

from __future__ import annotations

from bds_metrics.config import Config, TenantConfig


def pool_name(conn_id: str) -> str:
    return f"bds_{conn_id}"


def extract_pool(t: TenantConfig, dataset: str) -> str:
    """The pool of an extract task. `gvp_cdrs` reads every GVP source of the tenant
    (at once); it queues in the pool of its first source."""
    if dataset == "gvp_cdrs":
        return pool_name(t.gvp_sources()[0][0])
    return pool_name(t.gimdb_conn_id)


def wanted(cfg: Config | list[TenantConfig]) -> dict[str, int]:
    """{pool name: slots} for every source connection of the configuration."""
    tenants = cfg.tenants if isinstance(cfg, Config) else cfg
    out: dict[str, int] = {}
    for t in tenants:
        for conn, size in t.pool_sizes.items():
            out[pool_name(conn)] = size
    return out


def check(cfg: Config | list[TenantConfig]) -> list[str]:
    """Problems (one line each): pools missing or of another size than configured."""
    from airflow.models.pool import Pool
    from airflow.utils.session import create_session

    problems = []
    with create_session() as s:
        have = {p.pool: p.slots for p in s.query(Pool)}
    for name, size in sorted(wanted(cfg).items()):
        if name not in have:
            problems.append(f"pool {name} is missing (wanted {size} slots): run `bds pools`")
        elif have[name] != size:
            problems.append(f"pool {name} has {have[name]} slots, the config says {size}")
    return problems


def ensure(cfg: Config | list[TenantConfig]) -> list[str]:
    """Create or resize the pools; returns one line per pool."""
    from airflow.models.pool import Pool

    lines = []
    for name, size in sorted(wanted(cfg).items()):
        Pool.create_or_update_pool(name, size, "bds: extracts of one source connection",
                                   include_deferred=False)
        lines.append(f"pool {name}: {size} slots")
    return lines

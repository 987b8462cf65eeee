"""Which datasets a tenant's DAG extracts and which each metric reads.

Kept free of pandas/pyarrow imports: the DAG factory calls it at parse time.
"""

from __future__ import annotations

from .config import TenantConfig

METRIC_INPUTS: dict[str, tuple[str, ...]] = {
    "seats_chat": ("mm_sessions", "agent_switch", "handled"),
    "seats_outbound": ("sm_fact", "handled"),
    "gvp_ports": ("gvp_cdrs",),
    "gvp_minutes": ("gvp_cdrs",),
}
CONFIG_SNAPSHOTS = ("agent_resource", "folder")


def needed_datasets(t: TenantConfig) -> list[str]:
    """Datasets queried for a tenant's day, in extract order.

    Every Info Mart dataset is extracted each day (SPEC §4), whatever the metrics, so
    operators can inspect them and the manifest counts the same inputs for every
    tenant; GVP CDRs are read only for GVP metrics, which alone name GVP connections.
    """
    out = ["sm_fact", "mm_sessions", "agent_switch", "handled", *CONFIG_SNAPSHOTS, "voice_calls"]
    if t.has_gvp:
        out.append("gvp_cdrs")
    return out


def derived_datasets(t: TenantConfig) -> list[str]:
    """Datasets derived from another dataset file rather than queried."""
    return ["tfn_durations", "pstn_durations"]


def metric_inputs(metric: str) -> tuple[str, ...]:
    return METRIC_INPUTS[metric]

"""Which datasets a tenant's DAG extracts and which each metric reads.

Kept free of pandas/pyarrow imports: the DAG factory calls it at parse time.
"""

from __future__ import annotations

from .config import GVP_METRICS, SEAT_METRICS, TenantConfig

METRIC_INPUTS: dict[str, tuple[str, ...]] = {
    "seats_chat": ("mm_sessions", "agent_switch", "handled"),
    "seats_outbound": ("sm_fact", "handled"),
    "gvp_ports": ("gvp_cdrs",),
    "gvp_minutes": ("gvp_cdrs",),
}
CONFIG_SNAPSHOTS = ("agent_resource", "folder")


def needed_datasets(t: TenantConfig) -> list[str]:
    """The datasets extracted from the databases for a tenant, in extract order."""
    out = []
    if "seats_outbound" in t.metrics:
        out.append("sm_fact")
    if "seats_chat" in t.metrics:
        out += ["mm_sessions", "agent_switch"]
    if any(m in t.metrics for m in SEAT_METRICS):
        out.append("handled")
    out += list(CONFIG_SNAPSHOTS)
    if any(m in t.metrics for m in GVP_METRICS):
        out += ["voice_calls", "gvp_cdrs"]
    return out


def derived_datasets(t: TenantConfig) -> list[str]:
    """Datasets derived from another dataset file rather than queried."""
    return ["tfn_durations", "pstn_durations"] if any(m in t.metrics for m in GVP_METRICS) else []


def metric_inputs(metric: str) -> tuple[str, ...]:
    return METRIC_INPUTS[metric]

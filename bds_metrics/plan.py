"""The day plan: a tenant-day's steps, in order, with their inputs by name (SPEC §8).

`day_plan(t)` is the one description of a tenant's daily wiring. The DAG factory turns
each `Step` into an operator (its task id `<group>.<name>`, its inputs the upstream
tasks' XCom paths); `pipeline.run_day` walks the same list in one process. So a test
that runs `run_day` exercises the DAG's own wiring.

Inputs are nested mappings whose leaves are the task ids of upstream steps: the shape a
step receives (`{"datasets": {"sm_fact": path, ...}}`), with each task id replaced by
the path that task returned.

Kept free of pandas/pyarrow imports: the DAG factory calls it at parse time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .config import TenantConfig

CONFIG_SNAPSHOTS = ("agent_resource", "folder")
SESSION_DATASETS = ("sm_fact", "mm_sessions")  # whose agents the agent->BU map covers
CALL_DATASETS = ("tfn_durations", "pstn_durations")  # derived from voice_calls
GROUPS = ("extract", "attribute", "compute", "emit", "monthly")  # SPEC §8 task groups
KINDS = ("extract", "derive", "attribute", "compute", "emit", "monthly")  # operator classes
ACTIONS = ("extract", "derive", "agent_bu", "cdr_bu", "compute", "daily_files", "month_files",
           "month_report")  # pipeline.run_action


@dataclass(frozen=True)
class Step:
    """One task of the day: `group.name` is its task id; `action` the pipeline function."""

    group: str  # one of GROUPS
    name: str  # the task's id inside its group (dataset, map or metric name, ...)
    kind: str  # one of KINDS: which operator class runs it
    action: str  # extract | derive | agent_bu | cdr_bu | compute | daily_files | ...
    inputs: dict[str, Any] = field(default_factory=dict)  # leaves: upstream task ids
    serial: bool = False  # at most one at a time per tenant (monthly writes, SPEC §8)

    @property
    def task_id(self) -> str:
        return f"{self.group}.{self.name}"


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
    return list(CALL_DATASETS)


def metric_inputs(t: TenantConfig, metric: str) -> tuple[str, ...]:
    return t.metric(metric).inputs


def _ids(group: str, names: list[str] | tuple[str, ...]) -> dict[str, str]:
    return {n: f"{group}.{n}" for n in names}


def day_plan(t: TenantConfig) -> list[Step]:
    """Every step of one tenant-day, each after the steps it reads (SPEC §8)."""
    steps: list[Step] = []
    queried = needed_datasets(t)
    steps += [Step("extract", n, "extract", "extract") for n in queried]
    steps += [Step("extract", n, "derive", "derive", {"voice_calls": "extract.voice_calls"})
              for n in derived_datasets(t)]
    datasets = _ids("extract", [*queried, *derived_datasets(t)])

    maps = {"agent_bu": "attribute.agent_bu"}
    steps.append(Step("attribute", "agent_bu", "attribute", "agent_bu", {"datasets": {
        k: datasets[k] for k in (*SESSION_DATASETS, *CONFIG_SNAPSHOTS)}}))
    if t.has_gvp:
        maps["cdr_bu"] = "attribute.cdr_bu"
        steps.append(Step("attribute", "cdr_bu", "attribute", "cdr_bu", {"datasets": {
            k: datasets[k] for k in ("gvp_cdrs", *CALL_DATASETS, *CONFIG_SNAPSHOTS)}}))

    for m in t.metrics:
        x = t.metric(m)
        steps.append(Step("compute", m, "compute", "compute", {"inputs": {
            **{k: datasets[k] for k in x.inputs}, x.bu_map: maps[x.bu_map]}}))
    steps.append(Step("emit", "daily_files", "emit", "daily_files", {
        "metrics": _ids("compute", t.metrics), "datasets": datasets, "maps": maps}))
    steps.append(Step("monthly", "month_files", "monthly", "month_files",
                      {"daily_folder": "emit.daily_files"}, serial=True))
    steps.append(Step("monthly", "month_report", "monthly", "month_report",
                      {"month_folder": "monthly.month_files"}, serial=True))
    return steps


def resolve(inputs: Any, value_of: Any) -> Any:
    """`inputs` with every task-id leaf replaced by `value_of[task id]` (a path, an XComArg)."""
    if isinstance(inputs, dict):
        return {k: resolve(v, value_of) for k, v in inputs.items()}
    return value_of[inputs]


def leaves(inputs: Any) -> list[Any]:
    """The leaf values of nested inputs (task ids, or the paths they resolved to)."""
    if isinstance(inputs, dict):
        return [x for v in inputs.values() for x in leaves(v)]
    return [inputs]

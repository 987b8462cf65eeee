"""Metric values for one tenant, one period, one metric (SPEC §5), for every region and scope.

Input frames come from the dataset files; output is a `Results` table with one row per
(scope, region, AgentGroupName), the audit facts (peak first/last second, agent ids),
and per-minute peaks for the usage report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import kernels
from .catalog import CONCURRENT, ENABLED, Metric
from .config import TenantConfig
from .days import Period


class MappingError(RuntimeError):
    """A session maps to no location and the tenant has no default location."""


RESULT_COLUMNS = [
    "metric", "tier3_id", "region", "group", "value", "peak_first", "peak_last", "agents",
]


@dataclass
class Results:
    rows: pd.DataFrame  # RESULT_COLUMNS
    minutes: pd.DataFrame  # metric, tier3_id, region, minute, peak (non-zero minutes only)


def codes_of(values: pd.Series, code: dict[str, int]) -> np.ndarray:
    """`code[value]` for each value (-1 for null or unknown), via its distinct values:
    the dictionary is consulted once per distinct value, never once per row."""
    idx, distinct = pd.factorize(values)
    lut = np.array([code.get(v, -1) for v in distinct] + [-1], dtype=np.int64)
    return lut[idx]  # idx -1 (null) picks the trailing -1


def region_of_switch(t: TenantConfig, switch: pd.Series, day: Period, metric: str) -> np.ndarray:
    """Region (index into `t.regions`) per session, by the location that lists its switch;
    unknown or null switches go to the default location."""
    regions = {r.code: i for i, r in enumerate(t.regions)}
    region = codes_of(switch, {sw: regions[r.code] for r, loc in t.locations
                               for sw in loc.switches})
    unmapped = region < 0
    if unmapped.any():
        default = t.default_location
        if default is None:
            bad = sorted(switch[unmapped].fillna("(no switch)").astype(str).unique())
            raise MappingError(
                f"tenant {t.id!r}, day {day.label}, metric {metric}: sessions on switch(es) "
                f"{bad} map to no location and the tenant has no default location "
                f"(file {t.source})"
            )
        region[unmapped] = next(regions[r.code] for r, loc in t.locations
                                if loc.code == default.code)
    return region


def region_of_location(t: TenantConfig, location: pd.Series) -> np.ndarray:
    """Region (index into `t.regions`) of each location code."""
    regions = {r.code: i for i, r in enumerate(t.regions)}
    return codes_of(location, {loc.code: regions[r.code] for r, loc in t.locations})


def scope_of_unit(t: TenantConfig, bu_id: pd.Series) -> np.ndarray:
    """Scope (index into `t.scopes()`) of each BU id; null: the default BU."""
    scopes = {tier3: i for i, (tier3, _) in enumerate(t.scopes()) if tier3}
    return codes_of(bu_id.fillna(t.default_bu_id), scopes)


def unit_of_agent(t: TenantConfig, agent: np.ndarray, agent_bu: pd.DataFrame | None
                  ) -> np.ndarray:
    """Scope of each session's agent by the agent→BU map; agents not in it: the default BU."""
    default = scope_of_unit(t, pd.Series([t.default_bu_id]))
    if agent_bu is None or not len(agent_bu):
        return np.repeat(default, len(agent))
    at = pd.Index(agent_bu["agent_id"].to_numpy(dtype=np.int64)).get_indexer(agent)
    return np.concatenate([scope_of_unit(t, agent_bu["bu_id"]), default])[at]  # -1: default


def seat_inputs(m: Metric, frames: Mapping[str, pd.DataFrame]
                ) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """(sessions[agent_id, switch_name, start_ts, end_ts], qualifying events[agent_id,
    start_ts] or None when every session qualifies) of a seat metric (SPEC §5.1, §5.3).

    `frames` holds the metric's registry inputs by dataset name (`Metric.inputs`).
    """
    if m.sessions == "mm_sessions":
        mm, agent_switch = frames["mm_sessions"], frames["agent_switch"]
        sw = agent_switch.drop_duplicates("agent_id").set_index("agent_id")["switch_name"]
        sessions = mm.assign(switch_name=mm["agent_id"].map(sw))
    else:
        sm = frames["sm_fact"]
        sessions = sm[sm["media"].isin(m.media)]
    if m.qualifies == "always":
        return sessions, None
    handled = frames["handled"]
    if m.qualifies == "ocs":
        return sessions, handled[handled["ocs"].fillna(False).astype(bool)]
    return sessions, handled[handled["media"] == m.handled_media]


def compute_metric(t: TenantConfig, p: Period, m: Metric, frames: Mapping[str, pd.DataFrame],
                   bu_map: pd.DataFrame | None) -> Results:
    """One metric by its registry kernel: seats (SPEC §5.1), ports or minutes (§5.2)."""
    if m.kernel == "seats":
        sessions, events = seat_inputs(m, frames)
        return compute_seats(t, p, m.name, sessions, events, bu_map)
    return compute_gvp(t, p, m, frames["gvp_cdrs"], bu_map)


def _arrays(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    start = df["start_ts"].to_numpy(dtype=np.int64)
    open_ = df["end_ts"].isna().to_numpy()
    end = df["end_ts"].fillna(0).to_numpy(dtype=np.int64)
    return start, end, open_


def _scope_masks(
    t: TenantConfig, region: np.ndarray, unit: np.ndarray | None
) -> list[tuple[str, str, np.ndarray]]:
    """(tier3 id, region code, mask) per region and scope; `region`/`unit` are indexes."""
    out = []
    for ri, r in enumerate(t.regions):
        in_region = region == ri
        for si, (tier3, _) in enumerate(t.scopes()):
            mask = in_region if tier3 == "" else in_region & (unit == si)
            out.append((tier3, r.code, mask))
    return out


def _row(metric, tier3, region, group, value, span=None, agents=()) -> dict:
    return {
        "metric": metric, "tier3_id": tier3, "region": region, "group": group,
        "value": int(value),
        "peak_first": None if span is None else int(span[0]),
        "peak_last": None if span is None else int(span[1]),
        "agents": np.asarray(agents, dtype=np.int64).tolist(),
    }


def _minute_rows(metric, tier3, region, st: kernels.Steps, p: Period) -> pd.DataFrame | None:
    mins, peaks = st.minute_peaks(p.start, p.end)
    nz = peaks > 0
    if not nz.any():
        return None
    return pd.DataFrame({
        "metric": metric, "tier3_id": tier3, "region": region,
        "minute": mins[nz], "peak": peaks[nz],
    })


def compute_seats(
    t: TenantConfig, p: Period, metric: str, sessions: pd.DataFrame,
    events: pd.DataFrame | None, agent_bu: pd.DataFrame | None,
) -> Results:
    """Concurrent and enabled per region and scope; `events` None: every session qualifies."""
    start, end, open_ = _arrays(sessions)
    agent = sessions["agent_id"].to_numpy(dtype=np.int64)
    if events is None:
        q = np.ones(len(agent), dtype=bool)
    else:
        q = kernels.qualifies(
            agent, start, end, open_,
            events["agent_id"].to_numpy(dtype=np.int64),
            events["start_ts"].to_numpy(dtype=np.int64), p.end,
        )
    s, e, keep = kernels.close_and_clip(start[q], end[q], open_[q], p.start, p.end)
    counted = np.flatnonzero(q)[keep]
    agent = agent[counted]
    region = region_of_switch(t, sessions["switch_name"].iloc[counted], p, metric)
    unit = unit_of_agent(t, agent, agent_bu) if t.business_units else None
    rows, minutes = [], []
    for tier3, reg, m in _scope_masks(t, region, unit):
        mk, ms, me = kernels.merge_by_key(agent[m], s[m], e[m], p.start)
        st = kernels.steps(ms, me)
        span = st.peak_span()
        at_peak = kernels.active_at(mk, ms, me, span[0]) if span else ()
        rows.append(_row(metric, tier3, reg, CONCURRENT, st.peak, span, at_peak))
        enabled = kernels.distinct(mk)
        # Enabled is stored even when only the month bills it (enabled: monthly).
        rows.append(_row(metric, tier3, reg, ENABLED, len(enabled), None, enabled))
        mr = _minute_rows(metric, tier3, reg, st, p)
        if mr is not None:
            minutes.append(mr)
    return _results(rows, minutes)


def compute_gvp(
    t: TenantConfig, p: Period, m: Metric, cdrs: pd.DataFrame, cdr_bu: pd.DataFrame | None
) -> Results:
    """Ports (peak CDRs in one second) or minutes (sum of per-CDR ceil minutes), SPEC §5.2."""
    metric = m.name
    start, end, open_ = _arrays(cdrs)
    s, e, keep = kernels.close_and_clip(start, end, open_, p.start, p.end)
    region = region_of_location(t, cdrs["location"])[keep]
    unit = None
    if t.business_units:
        key = ["cdr_id", "location"]
        kept = cdrs.loc[keep, key].reset_index(drop=True)
        if cdr_bu is not None and len(cdr_bu):
            repeated = cdr_bu.duplicated(key)
            if repeated.any():  # the extract resolves repeated keys (SPEC §4): a stale file
                k = cdr_bu.loc[repeated, key].iloc[0]
                raise ValueError(f"dataset gvp_cdrs: key cdr_id {int(k['cdr_id'])}, location "
                                 f"{k['location']!r} appears more than once in cdr_bu")
            kept = kept.merge(cdr_bu[[*key, "bu_id"]], on=key, how="left", sort=False)
        unit = scope_of_unit(t, kept.get("bu_id", pd.Series(index=kept.index, dtype=object)))
    rows, minutes = [], []
    for tier3, reg, mask in _scope_masks(t, region, unit):
        if m.kernel == "ports":
            st = kernels.steps(s[mask], e[mask])
            rows.append(_row(metric, tier3, reg, CONCURRENT, st.peak, st.peak_span()))
            mr = _minute_rows(metric, tier3, reg, st, p)
            if mr is not None:
                minutes.append(mr)
        else:
            rows.append(_row(metric, tier3, reg, CONCURRENT,
                             kernels.ceil_minutes(s[mask], e[mask])))
    return _results(rows, minutes)


def _results(rows: list[dict], minutes: list[pd.DataFrame]) -> Results:
    frame = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    mins = (
        pd.concat(minutes, ignore_index=True) if minutes
        else pd.DataFrame({"metric": [], "tier3_id": [], "region": [], "minute": [], "peak": []})
    )
    return Results(frame, mins)

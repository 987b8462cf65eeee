"""Business-unit attribution (SPEC §6): agents by their Person folder, CDRs by their calls.

Both maps are computed with whole-array operations; the only Python loops run over
folder-tree levels and configured DNIS prefixes, never over agents, calls or CDRs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .config import TenantConfig

OK, MISSING_PARENT, CYCLE = "", "folder_missing_parent", "folder_cycle"
NO_PERSON = "agent_without_person"
NO_CALLID = "cdr_without_callid"


def folder_units(
    folder_ids: np.ndarray, folders: pd.DataFrame, bu_by_name: dict[str, str]
) -> tuple[np.ndarray, np.ndarray]:
    """For each folder id: (BU id or '' for none, chain status '' / missing / cycle).

    Walking up from the folder, the match nearest the root wins, which is the first
    match walking down from the root.
    """
    n = len(folder_ids)
    bu = np.full(n, "", dtype=object)
    status = np.full(n, OK, dtype=object)
    if n == 0:
        return bu, status
    fid = folders["folder_id"].to_numpy(dtype=np.int64)
    order = np.argsort(fid)
    fid_sorted = fid[order]
    parent = folders["parent_id"].fillna(0).to_numpy(dtype=np.int64)[order]
    names = folders["name"].fillna("").str.lower().map(bu_by_name).fillna("")
    unit = names.to_numpy(dtype=object)[order]

    def lookup(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pos = np.searchsorted(fid_sorted, ids)
        pos = np.minimum(pos, max(len(fid_sorted) - 1, 0))
        found = (fid_sorted[pos] == ids) if len(fid_sorted) else np.zeros(len(ids), bool)
        return pos, found

    cur = folder_ids.astype(np.int64).copy()
    active = np.arange(n)
    for _ in range(len(fid_sorted) + 1):
        pos, found = lookup(cur[active])
        missing = ~found
        status[active[missing]] = MISSING_PARENT
        active, pos = active[found], pos[found]
        hit = unit[pos] != ""
        bu[active[hit]] = unit[pos][hit]
        nxt = parent[pos]
        at_root = nxt == 0
        cur[active] = nxt
        active = active[~at_root]
        if len(active) == 0:
            break
    if len(active):  # still climbing after more steps than there are folders
        status[active] = CYCLE
    broken = status != OK
    bu[broken] = ""
    return bu, status


def agent_units(
    t: TenantConfig,
    agent_ids: np.ndarray,
    agents: pd.DataFrame,
    folders: pd.DataFrame,
) -> pd.DataFrame:
    """agent_id → bu_id (default BU when no match) and the fallback reason ('' if none)."""
    ids = np.unique(agent_ids.astype(np.int64))
    out = pd.DataFrame({"agent_id": ids, "bu_id": t.default_bu_id, "reason": ""})
    if len(ids) == 0:
        return out
    bu_by_name = {b.name.lower(): b.id for b in t.business_units}
    person = agents.drop_duplicates("agent_id").set_index("agent_id")["folder_id"]
    has_person = np.isin(ids, person.index.to_numpy(dtype=np.int64))
    out.loc[~has_person, "reason"] = NO_PERSON
    folder_of = person.reindex(ids)
    with_folder = has_person & folder_of.notna().to_numpy() & (folder_of.fillna(0) != 0).to_numpy()
    fids = folder_of[with_folder].to_numpy(dtype=np.int64)
    uniq, inv = np.unique(fids, return_inverse=True)
    bu, status = folder_units(uniq, folders, bu_by_name)
    bu_a, st_a = bu[inv], status[inv]
    idx = np.flatnonzero(with_folder)
    matched = bu_a != ""
    out.loc[out.index[idx[matched]], "bu_id"] = bu_a[matched]
    out.loc[out.index[idx], "reason"] = st_a
    return out


def call_units(t: TenantConfig, calls: pd.DataFrame, agent_bu: pd.DataFrame) -> pd.Series:
    """For each call row: the BU it can be attributed to, or '' when none (SPEC §6)."""
    n = len(calls)
    unit = np.full(n, "", dtype=object)
    best = np.full(n, -1)
    dnis = calls["dnis"].fillna("").astype(str)
    for b in t.business_units:
        for p in b.dnis:
            hit = dnis.str.startswith(p).to_numpy() & (len(p) > best)
            unit[hit] = b.id
            best[hit] = len(p)
    by_agent = agent_bu.set_index("agent_id")["bu_id"]
    agent_unit = calls["agent_id"].map(by_agent).fillna("").to_numpy(dtype=object)
    agent_unit[agent_unit == t.default_bu_id] = ""
    no_dnis = unit == ""
    unit[no_dnis] = agent_unit[no_dnis]
    return pd.Series(unit, index=calls.index)


def cdr_units(
    t: TenantConfig, cdrs: pd.DataFrame, calls: pd.DataFrame, agent_bu: pd.DataFrame
) -> pd.DataFrame:
    """(cdr_id, location) → bu_id: the first attributable call with the CDR's CALLID.

    A CDR id is unique only within one GVP database, hence the location in the key.
    """
    out = pd.DataFrame({
        "cdr_id": cdrs["cdr_id"].to_numpy(), "location": cdrs["location"].to_numpy(),
        "bu_id": t.default_bu_id, "reason": "",
    })
    out.loc[cdrs["callid"].isna().to_numpy(), "reason"] = NO_CALLID
    if len(calls) and len(cdrs):
        c = calls.assign(unit=call_units(t, calls, agent_bu))
        c = c[c["unit"] != ""].sort_values(
            ["start_ts", "callid", "dnis", "agent_id"], na_position="last", kind="stable"
        )
        first = c.drop_duplicates("callid", keep="first").set_index("callid")["unit"]
        got = cdrs["callid"].map(first)
        has = got.notna().to_numpy()
        out.loc[has, "bu_id"] = got[has].to_numpy()
    return out

"""Business-unit attribution (SPEC §6): agents by their Person folder, CDRs by their calls.

Both maps are computed with whole-array operations; the only Python loops run over
folder-tree levels and configured DNIS prefixes, never over agents, calls or CDRs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .config import TenantConfig
from .kernels import distinct
from .names import name_key, name_keys

OK, MISSING_PARENT, CYCLE = "", "folder_missing_parent", "folder_cycle"
NO_PERSON = "agent_without_person"
NO_CALLID = "cdr_without_callid"


def folder_units(
    folder_ids: np.ndarray, folders: pd.DataFrame, bu_by_key: dict[str, str]
) -> tuple[np.ndarray, np.ndarray]:
    """For each folder id: (BU id or '' for none, chain status '' / missing / cycle).

    `bu_by_key` maps a BU name's `name_key` to its id (`units_by_key`); folder names are
    compared by the same key (SPEC §6).

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
    names = folder_units_by_name(folders, bu_by_key)
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


def units_by_key(t: TenantConfig) -> dict[str, str]:
    """name_key(BU name) → BU id (the configuration refuses two names with one key)."""
    return {name_key(b.name): b.id for b in t.business_units}


def folder_units_by_name(folders: pd.DataFrame, bu_by_key: dict[str, str]) -> pd.Series:
    """For each folder row: the id of the BU its own name equals, or ''."""
    return name_keys(folders["name"]).map(bu_by_key).fillna("")


def agent_units(
    t: TenantConfig,
    agent_ids: np.ndarray,
    agents: pd.DataFrame,
    folders: pd.DataFrame,
) -> pd.DataFrame:
    """agent_id → bu_id (default BU when no match) and the fallback reason ('' if none)."""
    ids = distinct(agent_ids.astype(np.int64))
    bu_id = np.full(len(ids), t.default_bu_id, dtype=object)
    reason = np.full(len(ids), OK, dtype=object)
    if len(ids):
        bu_by_key = units_by_key(t)
        person = agents.drop_duplicates("agent_id").set_index("agent_id")["folder_id"]
        has_person = np.isin(ids, person.index.to_numpy(dtype=np.int64))
        reason[~has_person] = NO_PERSON
        folder_of = person.reindex(ids)
        with_folder = (has_person & folder_of.notna().to_numpy()
                       & (folder_of.fillna(0) != 0).to_numpy())
        fids = folder_of[with_folder].to_numpy(dtype=np.int64)
        uniq = distinct(fids)
        bu, status = folder_units(uniq, folders, bu_by_key)
        at = np.searchsorted(uniq, fids)
        idx = np.flatnonzero(with_folder)
        matched = bu[at] != ""
        bu_id[idx[matched]] = bu[at][matched]
        reason[idx] = status[at]
    return pd.DataFrame({"agent_id": ids, "bu_id": bu_id, "reason": reason})


def call_units(t: TenantConfig, calls: pd.DataFrame, agent_bu: pd.DataFrame) -> np.ndarray:
    """For each call row: the index in `t.business_units` of the BU it can be attributed
    to, or -1 when none (SPEC §6)."""
    n = len(calls)
    unit = np.full(n, -1)
    best = np.full(n, -1)
    dnis = calls["dnis"].fillna("").astype(str)
    for k, b in enumerate(t.business_units):
        for p in b.dnis:
            hit = dnis.str.startswith(p).to_numpy(dtype=bool) & (len(p) > best)
            unit[hit] = k
            best[hit] = len(p)
    ids = pd.Index([b.id for b in t.business_units])  # the default BU is not attributable
    of_agent = np.append(ids.get_indexer(agent_bu["bu_id"]), -1)
    agent_unit = of_agent[pd.Index(agent_bu["agent_id"]).get_indexer(calls["agent_id"])]
    return np.where(unit < 0, agent_unit, unit)


def cdr_units(
    t: TenantConfig, cdrs: pd.DataFrame, calls: pd.DataFrame, agent_bu: pd.DataFrame
) -> pd.DataFrame:
    """(cdr_id, location) → bu_id: the first attributable call with the CDR's CALLID.

    A CDR id is unique only within one GVP database, hence the location in the key.
    Most CALLIDs have one attributable call; only the calls of those with several are
    sorted. A CALLID "equals" as in SQL: a null one matches nothing, so a CDR without a
    CALLID stays in the default BU (SPEC §4), whatever calls lack a CALLID too.
    `agent_bu` holds the BU of every agent id of `calls` (`agent_units`).
    """
    bu_id = np.full(len(cdrs), t.default_bu_id, dtype=object)
    reason = np.where(cdrs["callid"].isna().to_numpy(), NO_CALLID, OK).astype(object)
    if len(calls) and len(cdrs):
        unit = call_units(t, calls, agent_bu)
        keys = ["start_ts", "callid", "dnis", "agent_id"]
        usable = (unit >= 0) & calls["callid"].notna().to_numpy()
        c = calls.loc[usable, keys].assign(unit=unit[usable])
        several = c["callid"].duplicated(keep=False).to_numpy()
        if several.any():
            first = c[several].sort_values(keys, na_position="last", kind="stable")
            c = pd.concat([c[~several], first.drop_duplicates("callid", keep="first")])
        at = pc.fill_null(pc.index_in(pa.array(cdrs["callid"], pa.string()),
                                      value_set=pa.array(c["callid"], pa.string())), -1)
        at = at.to_numpy()
        names = np.array([b.id for b in t.business_units], dtype=object)
        bu_id[at >= 0] = names[c["unit"].to_numpy()[at[at >= 0]]]
    return pd.DataFrame({"cdr_id": cdrs["cdr_id"].to_numpy(),
                         "location": cdrs["location"].to_numpy(), "bu_id": bu_id,
                         "reason": reason})

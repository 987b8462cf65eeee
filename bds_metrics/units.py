"""`bds units`: which configuration folders would be detected as each business unit."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .attribution import OK, folder_units, folder_units_by_name, units_by_key
from .config import TenantConfig


def folder_paths(folders: pd.DataFrame) -> dict[int, str]:
    """folder id → '/Root/Child/...' (a broken chain is marked with '?')."""
    name = dict(zip(folders["folder_id"], folders["name"].fillna(""), strict=True))
    parent = dict(zip(folders["folder_id"], folders["parent_id"].fillna(0), strict=True))
    out = {}
    for fid in name:  # configuration folders: a handful, not billing rows
        parts, cur, seen = [], fid, set()
        while cur and cur not in seen:
            seen.add(cur)
            if cur not in name:
                parts.append("?")
                break
            parts.append(name[cur])
            cur = int(parent[cur])
        out[int(fid)] = "/" + "/".join(reversed(parts))
    return out


def detected_folders(t: TenantConfig, folders: pd.DataFrame) -> dict[str, list[str]]:
    """BU id → paths of the folders whose Persons it would get (nearest-root match)."""
    by_key = units_by_key(t)
    ids = folders["folder_id"].to_numpy(dtype=np.int64)
    bu, status = folder_units(ids, folders, by_key)
    own = folder_units_by_name(folders, by_key).to_numpy(dtype=object)
    paths = folder_paths(folders)
    out: dict[str, list[str]] = {b.id: [] for b in t.business_units}
    for fid, unit, st, mine in zip(ids, bu, status, own, strict=True):
        # the folder decides its subtree when it is its own nearest-root match
        if st == OK and unit and unit == mine:
            out[unit].append(paths[int(fid)])
    return {k: sorted(v) for k, v in out.items()}

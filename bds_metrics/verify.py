"""`bds verify`: every period folder of a tenant re-hashed against its manifest."""

from __future__ import annotations

import datetime as dt

from . import storage
from .config import TenantConfig
from .emission import verify_folder


def verify_tenant(
    t: TenantConfig, first: dt.date | None = None, last: dt.date | None = None
) -> tuple[int, list[str]]:
    """(folders checked, problems) for daily folders in range and months touching it."""
    lo = first.isoformat() if first else "0000-00-00"
    hi = last.isoformat() if last else "9999-12-31"
    checked, problems = 0, []
    for kind, lo_key, hi_key in (("daily", lo, hi), ("monthly", lo[:7], hi[:7])):
        base = storage.join(t.output_root, t.id, kind)
        for name in storage.listdir(base):
            if lo_key <= name <= hi_key:
                checked += 1
                problems += verify_folder(storage.join(base, name))
    return checked, problems

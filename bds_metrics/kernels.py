"""Vectorised interval kernels: clipping, per-agent merge, concurrency, qualification.

All inputs are numpy int64 arrays of epoch seconds and ids; nothing here loops over
sessions in Python. Intervals are half-open `[start, end)`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_SPAN = 1 << 20  # > the longest day/month window handled per call (offset arithmetic)


def close_and_clip(
    start: np.ndarray, end: np.ndarray, open_: np.ndarray, lo: int, hi: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Close open intervals at `hi`, clip to `[lo, hi)`; returns (start, end, kept mask).

    Intervals empty after clipping (zero length included) are dropped (mask False).
    """
    s = np.maximum(start.astype(np.int64), lo)
    e = np.where(open_, hi, end).astype(np.int64)
    e = np.minimum(e, hi)
    keep = e > s
    return s[keep], e[keep], keep


def qualifies(
    sess_key: np.ndarray,
    sess_start: np.ndarray,
    sess_end: np.ndarray,
    sess_open: np.ndarray,
    ev_key: np.ndarray,
    ev_ts: np.ndarray,
    day_end: int,
) -> np.ndarray:
    """True for sessions with an event of the same key at `start <= t < min(end, day_end)`.

    Open sessions run to `day_end`. Keys are non-negative int64 ids (agent ids).
    """
    n = len(sess_key)
    if n == 0 or len(ev_key) == 0:
        return np.zeros(n, dtype=bool)
    base = min(int(sess_start.min()), int(ev_ts.min()))
    keys, inv = np.unique(np.concatenate([sess_key, ev_key]), return_inverse=True)
    s_rank, e_rank = inv[:n].astype(np.int64), inv[n:].astype(np.int64)
    width = int(max(int(sess_start.max()), int(ev_ts.max())) - base) + 2
    ev = np.sort(e_rank * width + (ev_ts.astype(np.int64) - base))
    probe = s_rank * width + (sess_start.astype(np.int64) - base)
    pos = np.searchsorted(ev, probe, side="left")
    has = pos < len(ev)
    first = np.where(has, ev[np.minimum(pos, len(ev) - 1)], -1)
    same_key = has & (first // width == s_rank)
    t = first % width + base
    limit = np.where(sess_open, day_end, np.minimum(sess_end, day_end))
    return same_key & (t < limit)


def merge_by_key(
    key: np.ndarray, start: np.ndarray, end: np.ndarray, origin: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Union of each key's intervals: overlapping or touching ones become one.

    `origin` is the window's start (all intervals lie in `[origin, origin + _SPAN)`).
    Returns (key, start, end) of the merged intervals, sorted by key then start.
    """
    if len(key) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    uniq, rank = np.unique(key, return_inverse=True)
    off = rank.astype(np.int64) * _SPAN
    s = start.astype(np.int64) - origin + off
    e = end.astype(np.int64) - origin + off
    order = np.lexsort((s, off))
    s, e, rank = s[order], e[order], rank[order]
    run = np.maximum.accumulate(e)
    new = np.empty(len(s), dtype=bool)
    new[0] = True
    new[1:] = s[1:] > run[:-1]
    idx = np.flatnonzero(new)
    ms = s[idx]
    me = np.maximum.reduceat(e, idx)
    mk = rank[idx]
    base = mk.astype(np.int64) * _SPAN
    return uniq[mk], ms - base + origin, me - base + origin


@dataclass(frozen=True)
class Steps:
    """The count as a step function: `count[i]` holds on `[times[i], times[i+1])`."""

    times: np.ndarray
    counts: np.ndarray

    @property
    def peak(self) -> int:
        return int(self.counts.max()) if len(self.counts) else 0

    def peak_span(self) -> tuple[int, int] | None:
        """(first second, last second) at which the count equals the peak; None at 0."""
        p = self.peak
        if p == 0:
            return None
        at = np.flatnonzero(self.counts == p)
        # the count falls back below the peak at the next breakpoint, always present
        return int(self.times[at[0]]), int(self.times[at[-1] + 1]) - 1

    def minute_peaks(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """Peak count within each UTC minute overlapping `[lo, hi)`: (minute start, peak)."""
        m0 = lo - lo % 60
        mins = np.arange(m0, hi, 60, dtype=np.int64)
        if len(self.times) == 0:
            return mins, np.zeros(len(mins), dtype=np.int64)
        # count at each minute's start, plus each breakpoint's count in its minute
        at_min = np.searchsorted(self.times, mins, side="right") - 1
        c_min = np.where(at_min >= 0, self.counts[np.maximum(at_min, 0)], 0)
        peaks = c_min.astype(np.int64)
        inside = (self.times >= m0) & (self.times < hi)
        np.maximum.at(peaks, (self.times[inside] - m0) // 60, self.counts[inside])
        return mins, peaks


def steps(start: np.ndarray, end: np.ndarray) -> Steps:
    """Active count over time for half-open intervals (an end at t precedes a start at t)."""
    n = len(start)
    if n == 0:
        z = np.zeros(0, dtype=np.int64)
        return Steps(z, z)
    t = np.concatenate([end, start]).astype(np.int64)
    delta = np.concatenate([np.full(n, -1, np.int64), np.ones(n, np.int64)])
    # sort by time, ends (-1) before starts (+1) at equal times
    order = np.argsort(t * 2 + (delta > 0), kind="stable")
    t, c = t[order], np.cumsum(delta[order])
    last = np.empty(len(t), dtype=bool)
    last[:-1] = t[1:] != t[:-1]
    last[-1] = True
    return Steps(t[last], c[last])


def active_at(key: np.ndarray, start: np.ndarray, end: np.ndarray, t: int) -> np.ndarray:
    """Sorted distinct keys whose interval holds second `t`."""
    return np.unique(key[(start <= t) & (t < end)])


def ceil_minutes(start: np.ndarray, end: np.ndarray) -> int:
    """Sum over intervals of their length rounded up to whole minutes."""
    return int((-(-(end.astype(np.int64) - start.astype(np.int64)) // 60)).sum())

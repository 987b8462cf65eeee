"""Vectorised interval kernels: clipping, per-agent merge, concurrency, qualification.

All inputs are numpy int64 arrays of epoch seconds and ids; nothing here loops over
sessions in Python. Intervals are half-open `[start, end)`.

Speed: keys and times are packed into one int64 (`key * width + offset`) so that one
plain sort orders by both; distinct values come from a sort, not `np.unique`, whose
hash-based path (numpy 2.4) is about 20 times slower on a million agent ids; and no sort
here needs to be stable (ties give the same result in any order), so numpy's fast
unstable sorts are used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_SPAN = 1 << 20  # seconds (12 days) > the longest window merged per call: one day
_MAX = 1 << 62  # packed keys stay below this (int64)


def _firsts(s: np.ndarray) -> np.ndarray:
    """Mask of the first element of each run of equal values in sorted `s`."""
    new = np.empty(len(s), dtype=bool)
    new[:1] = True
    np.not_equal(s[1:], s[:-1], out=new[1:])
    return new


def distinct(a: np.ndarray) -> np.ndarray:
    """Sorted distinct values of `a` (what `np.unique(a)` returns)."""
    s = np.sort(a)
    return s[_firsts(s)]


def _codes(key: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Non-negative int64 codes with `code * width < 2**62`, and the keys they stand for.

    Ids that are small enough (agent ids are int4) are their own codes (second value
    None); other keys are replaced by their rank among the distinct keys.
    """
    key = key.astype(np.int64, copy=False)
    if len(key) == 0 or (key.min() >= 0 and key.max() < _MAX // width):
        return key, None
    order = np.argsort(key)
    first = _firsts(key[order])
    rank = np.empty(len(key), dtype=np.int64)
    rank[order] = np.cumsum(first) - 1
    return rank, key[order][first]


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
    width = int(max(int(sess_start.max()), int(ev_ts.max())) - base) + 2
    code, _ = _codes(np.concatenate([sess_key, ev_key]), width)
    s_code, e_code = code[:n], code[n:]
    ev = np.sort(e_code * width + (ev_ts.astype(np.int64) - base))
    probe = s_code * width + (sess_start.astype(np.int64) - base)
    order = np.argsort(probe)  # sorted needles: searchsorted walks `ev` once
    pos = np.empty(n, dtype=np.int64)
    pos[order] = np.searchsorted(ev, probe[order], side="left")
    has = pos < len(ev)
    first = np.where(has, ev[np.minimum(pos, len(ev) - 1)], -1)
    same_key = has & (first // width == s_code)
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
    if int(end.max()) - origin >= _SPAN or int(start.min()) < origin:
        raise ValueError(f"intervals outside [origin, origin + {_SPAN} s): keys would mix")
    code, keys = _codes(key, _SPAN)
    off = code * _SPAN
    s = start.astype(np.int64) - origin + off  # orders by key, then start
    e = end.astype(np.int64) - origin + off
    order = np.argsort(s)
    s, e, code = s[order], e[order], code[order]
    run = np.maximum.accumulate(e)
    new = np.empty(len(s), dtype=bool)
    new[0] = True
    new[1:] = s[1:] > run[:-1]
    idx = np.flatnonzero(new)
    ms = s[idx]
    me = np.maximum.reduceat(e, idx)
    mk = code[idx]
    base = mk * _SPAN
    return (mk if keys is None else keys[mk]), ms - base + origin, me - base + origin


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
    # one sorted array of time * 2 + (1 for a start): ends before starts at equal times
    k = np.sort(np.concatenate([end.astype(np.int64) * 2, start.astype(np.int64) * 2 + 1]))
    t, c = k >> 1, np.cumsum((k & 1) * 2 - 1)
    last = np.empty(len(t), dtype=bool)
    last[:-1] = t[1:] != t[:-1]
    last[-1] = True
    return Steps(t[last], c[last])


def active_at(key: np.ndarray, start: np.ndarray, end: np.ndarray, t: int) -> np.ndarray:
    """Sorted distinct keys whose interval holds second `t`."""
    return distinct(key[(start <= t) & (t < end)])


def ceil_minutes(start: np.ndarray, end: np.ndarray) -> int:
    """Sum over intervals of their length rounded up to whole minutes."""
    return int((-(-(end.astype(np.int64) - start.astype(np.int64)) // 60)).sum())

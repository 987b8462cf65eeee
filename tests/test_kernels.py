"""Kernels against a brute-force per-second reference (hypothesis), plus hand examples."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from bds_metrics import kernels

LO, HI = 1000, 1400  # a short "day" keeps the per-second reference cheap


@st.composite
def sessions(draw):
    n = draw(st.integers(0, 25))
    agents = draw(st.lists(st.integers(1, 6), min_size=n, max_size=n))
    starts = draw(st.lists(st.integers(LO - 100, HI + 50), min_size=n, max_size=n))
    lengths = draw(st.lists(st.integers(0, 200), min_size=n, max_size=n))
    opens = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    return (np.array(agents, np.int64), np.array(starts, np.int64),
            np.array(starts, np.int64) + np.array(lengths, np.int64), np.array(opens, bool))


def brute(agent, start, end, open_):
    """Per second of [LO, HI): the set of agents active (open sessions run to HI)."""
    active = {t: set() for t in range(LO, HI)}
    for a, s, e, o in zip(agent, start, end, open_, strict=True):
        e = HI if o else e
        for t in range(max(s, LO), min(e, HI)):
            active[t].add(int(a))
    return active


@settings(max_examples=300, deadline=None)
@given(sessions())
def test_merge_and_steps_match_per_second_count(data):
    agent, start, end, open_ = data
    s, e, keep = kernels.close_and_clip(start, end, open_, LO, HI)
    mk, ms, me = kernels.merge_by_key(agent[keep], s, e, LO)
    steps = kernels.steps(ms, me)
    ref = brute(agent, start, end, open_)
    counts = {t: len(v) for t, v in ref.items()}
    peak = max(counts.values())
    assert steps.peak == peak
    span = steps.peak_span()
    if peak == 0:
        assert span is None
    else:
        at = [t for t, c in counts.items() if c == peak]
        assert span == (at[0], at[-1])
        assert kernels.active_at(mk, ms, me, span[0]).tolist() == sorted(ref[at[0]])
    assert sorted(set(mk.tolist())) == sorted({a for v in ref.values() for a in v})
    # merged intervals of one agent never overlap or touch
    for a in np.unique(mk):
        iv = sorted(zip(ms[mk == a], me[mk == a], strict=True))
        assert all(x[1] < y[0] for x, y in zip(iv, iv[1:], strict=False))
    mins, peaks = steps.minute_peaks(LO, HI)
    for m, p in zip(mins, peaks, strict=True):
        assert p == max((counts[t] for t in range(max(m, LO), min(m + 60, HI))), default=0)


@settings(max_examples=300, deadline=None)
@given(sessions(), st.lists(st.tuples(st.integers(1, 6), st.integers(LO - 150, HI + 50)),
                            max_size=30))
def test_qualifies_matches_brute_force(data, events):
    agent, start, end, open_ = data
    ev_a = np.array([a for a, _ in events], np.int64)
    ev_t = np.array([t for _, t in events], np.int64)
    got = kernels.qualifies(agent, start, end, open_, ev_a, ev_t, HI)
    want = [
        any(ea == a and s <= et < (HI if o else min(e, HI)) for ea, et in events)
        for a, s, e, o in zip(agent, start, end, open_, strict=True)
    ]
    assert got.tolist() == want


def test_half_open_touching_sessions_do_not_overlap():
    # agent 1 ends at 1100, agent 2 starts at 1100: never two at once
    st_ = kernels.steps(np.array([1000, 1100]), np.array([1100, 1200]))
    assert st_.peak == 1
    assert st_.peak_span() == (1000, 1199)


def test_touching_sessions_of_one_agent_merge():
    k, s, e = kernels.merge_by_key(np.array([7, 7]), np.array([10, 20]), np.array([20, 30]), 0)
    assert (k.tolist(), s.tolist(), e.tolist()) == ([7], [10], [30])


def test_ceil_minutes_rounds_each_interval_up():
    # 61 s -> 2, 60 s -> 1, 1 s -> 1
    assert kernels.ceil_minutes(np.array([0, 0, 0]), np.array([61, 60, 1])) == 4

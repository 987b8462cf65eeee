"""The pipeline against an independent brute-force reference, on adversarial data.

`tests/reference/` was written from SPEC.md alone, without reading bds_metrics: plain
Python loops over every second of the day. Each seed builds a small nasty Info Mart
(DST days, touching/open/rejected sessions, folder cycles, test calls, ...); every
daily file must match the reference byte for byte, and the manifest's counts must match.
"""

from __future__ import annotations

import json
import os

import pytest
import yaml

from bds_metrics import pipeline
from bds_metrics.config import parse_config
from tests.reference import adversarial, brute

SEEDS = range(int(os.environ.get("BDS_REFERENCE_SEEDS", "30")))


@pytest.mark.parametrize("seed", SEEDS)
def test_daily_files_match_reference(seed, tmp_path, pg):
    case = adversarial.make_case(seed)
    with adversarial.scratch_databases(case, os.environ["BDS_TEST_PG_DSN"], tag=f"p{seed}") as (
        gim, gvps,
    ):
        adversarial.load_case(case, gim, gvps)
        defaults = {**case.defaults, "output_root": str(tmp_path / "out"),
                    "staging_root": str(tmp_path / "staging")}
        cfg = parse_config(yaml.safe_dump({"defaults": defaults, "tenants": [case.tenant]}),
                           f"seed{seed}.yaml")
        t = cfg.tenants[0]
        conns = {t.gimdb_conn_id: gim, **gvps}
        folder = pipeline.run_day(t, case.day, conns.__getitem__, monthly=False)
        want = brute.compute_day(gim, gvps, case.tenant, defaults, case.day)
        counts = brute.day_counts(gim, gvps, case.tenant, defaults, case.day)

    got = {n: open(os.path.join(folder, n), encoding="utf-8").read()
           for n in os.listdir(folder) if n != "manifest.json"}
    assert sorted(got) == sorted(want)
    for name in sorted(want):
        assert got[name] == want[name], f"seed {seed} ({case.features}): {name}"
    manifest = json.loads(open(os.path.join(folder, "manifest.json"), encoding="utf-8").read())
    assert manifest["rejected"] == counts["rejected"]
    assert manifest["fallbacks"] == counts["fallbacks"]

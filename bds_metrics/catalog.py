"""Metric codes, loaded from `catalog.yaml` (the one place an operator edits them)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import yaml

from .config import METRICS


@dataclass(frozen=True)
class MetricCodes:
    name: str
    channel_type: int
    service_class: int
    activity_type: int
    status: str
    kind: str  # seats | ports | minutes
    enabled_daily: bool

    def groups(self, kind: str) -> tuple[int, ...]:
        """AgentGroupNames in a daily or monthly billing file (SPEC §7)."""
        if self.kind != "seats":
            return (1,)
        return (1, 2) if kind == "monthly" or self.enabled_daily else (1,)


def load_catalog(path: Path | None = None) -> dict[str, MetricCodes]:
    path = path or files("bds_metrics") / "catalog.yaml"  # package data
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    missing = [m for m in METRICS if m not in raw]
    if missing:
        raise ValueError(f"{path}: no codes for metric(s) {missing}")
    return {m: MetricCodes(name=m, **raw[m]) for m in METRICS}


CATALOG = load_catalog()

"""The metric registry (SPEC §5, §5.3), loaded from `catalog.yaml`.

Every fact about a metric lives in one `Metric` built from one registry entry (or one
`custom_metrics` entry of the configuration): its codes, family (seat / GVP), seat
sessions and qualification, the datasets it reads, which business-unit map it uses, its
daily kernel, its month rule per AgentGroupName and its role in the usage report.
Modules ask the registry (`t.metric(name)` for a tenant's metrics, custom ones included);
no metric name is spelt in code outside this file's data and the kernels.

Parse-time cheap: no pandas, no database; the DAG factory imports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib.resources import files
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

REGISTRY_FILE = files("bds_metrics") / "catalog.yaml"  # package data (importlib.resources)
_RAW: dict[str, Any] = yaml.load(REGISTRY_FILE.read_text(encoding="utf-8"),
                                 Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))

# AgentGroupName values (SPEC §7): the one place the numbers 1 and 2 are defined.
CONCURRENT: int = int(_RAW["agent_groups"]["concurrent"])
ENABLED: int = int(_RAW["agent_groups"]["enabled"])
GROUPS: dict[str, int] = {"concurrent": CONCURRENT, "enabled": ENABLED}
MEDIA: tuple[str, ...] = tuple(_RAW["media"])
SESSIONS = ("sm_fact", "mm_sessions")
MONTH_RULES = ("max", "union", "sum")
NAME_PATTERN = r"^seats_[a-z0-9_]{1,58}$"


class RegistryError(ValueError):
    """The registry file itself is wrong (a code an operator mistyped in catalog.yaml)."""


@dataclass(frozen=True)
class Metric:
    """One metric's facts. Times are epoch seconds; values integers (SPEC §5, §7)."""

    name: str
    family: str  # seat | gvp
    channel_type: int
    service_class: int
    activity_type: int
    status: str
    provisional: bool
    inputs: tuple[str, ...]  # dataset names read by the compute step, in order
    bu_map: str  # agent_bu | cdr_bu: the attribution map the compute step reads
    kernel: str  # seats | ports | minutes
    month: tuple[tuple[int, str], ...]  # (AgentGroupName, max | union | sum), file order
    report: str  # seats | ports | minutes: how the usage report shows it
    enabled_daily: bool = False  # daily files carry AgentGroupName 2 (seat metrics)
    sessions: str | None = None  # seat: sm_fact | mm_sessions
    media: tuple[str, ...] = ()  # seat on sm_fact: session media counted
    qualifies: str = "always"  # seat: always | handled_media | ocs
    handled_media: str | None = None  # seat, qualifies handled_media: the media
    builtin: bool = True

    @property
    def is_seat(self) -> bool:
        return self.family == "seat"

    @property
    def has_peak(self) -> bool:
        """Concurrent rows carry the peak's first/last second (seats and ports)."""
        return self.kernel in ("seats", "ports")

    @property
    def has_agents(self) -> bool:
        return self.kernel == "seats"

    def groups(self, period_kind: str) -> tuple[int, ...]:
        """AgentGroupNames in a daily or monthly billing file (SPEC §7)."""
        if period_kind == "monthly":
            return tuple(g for g, _ in self.month)
        return (CONCURRENT, ENABLED) if self.enabled_daily else (CONCURRENT,)

    def month_rule(self, group: int) -> str:
        return dict(self.month)[group]


# ---------------------------------------------------------------- seat entries


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _known_media(v: str, key: str) -> str:
    if v not in MEDIA:
        raise ValueError(f"{key}: unknown media {v!r}; known: {list(MEDIA)} "
                         "(catalog.yaml `media`)")
    return v


class SeatSpec(_Strict):
    """One seat metric as the registry and `custom_metrics` spell it (SPEC §5.3)."""

    name: str = Field(pattern=NAME_PATTERN)
    sessions: Literal["sm_fact", "mm_sessions"]
    media: list[str] | None = None
    qualifies: Any
    enabled: Literal["daily", "monthly"]
    channel_type: int = Field(ge=0, le=2**31 - 1)
    service_class: int = Field(ge=0, le=2**31 - 1)
    activity_type: int = Field(ge=0, le=2**31 - 1)
    status: str = Field(pattern=r"^[A-Za-z0-9_]{1,64}$")

    @field_validator("media")
    @classmethod
    def _media(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            if not v:
                raise ValueError("an empty media list counts no session")
            for m in v:
                _known_media(m, "media")
            if len(set(v)) != len(v):
                raise ValueError("a media is listed twice")
        return v

    @field_validator("qualifies", mode="before")
    @classmethod
    def _qualifies(cls, v: Any) -> tuple[str, str | None]:
        if v == "always":
            return ("always", None)
        if isinstance(v, dict) and list(v) == ["handled_media"] and isinstance(
                v["handled_media"], str):
            return ("handled_media", _known_media(v["handled_media"], "handled_media"))
        if isinstance(v, dict) and v == {"ocs": True} and v["ocs"] is True:
            return ("ocs", None)
        raise ValueError(f"unknown qualification {v!r}: always | {{handled_media: MEDIA}} | "
                         "{ocs: true}")

    @model_validator(mode="after")
    def _media_for_sessions(self) -> SeatSpec:
        if self.sessions == "sm_fact" and self.media is None:
            raise ValueError("media: required with sessions sm_fact")
        if self.sessions == "mm_sessions" and self.media is not None:
            raise ValueError("media: multimedia login sessions have no media (sm_fact only)")
        return self


_SEAT = _RAW["families"]["seat"]
_GVP = _RAW["families"]["gvp"]


def _month(rules: Mapping[str, str]) -> tuple[tuple[int, str], ...]:
    out = []
    for group, rule in rules.items():
        if group not in GROUPS or rule not in MONTH_RULES:
            raise RegistryError(f"{REGISTRY_FILE}: month rule {group}: {rule} is not one of "
                                f"{list(GROUPS)}: {list(MONTH_RULES)}")
        out.append((GROUPS[group], rule))
    return tuple(sorted(out))


def seat_metric(spec: SeatSpec, *, builtin: bool, provisional: bool = False) -> Metric:
    """The Metric of a seat entry: its inputs follow from its sessions and qualification."""
    kind, media = spec.qualifies
    inputs = [spec.sessions]
    if spec.sessions == "mm_sessions":
        inputs.append("agent_switch")  # SPEC §5.1: a login session's switch is its agent's
    if kind != "always":
        inputs.append("handled")
    return Metric(
        name=spec.name, family="seat", channel_type=spec.channel_type,
        service_class=spec.service_class, activity_type=spec.activity_type,
        status=spec.status, provisional=provisional, inputs=tuple(inputs),
        bu_map=_SEAT["bu_map"], kernel=_SEAT["kernel"], month=_month(_SEAT["month"]),
        report=_SEAT["report"], enabled_daily=spec.enabled == "daily",
        sessions=spec.sessions, media=tuple(spec.media or ()), qualifies=kind,
        handled_media=media, builtin=builtin,
    )


def _gvp_metric(name: str, e: dict[str, Any]) -> Metric:
    return Metric(
        name=name, family="gvp", channel_type=int(e["channel_type"]),
        service_class=int(e["service_class"]), activity_type=int(e["activity_type"]),
        status=str(e["status"]), provisional=bool(e.get("provisional", False)),
        inputs=tuple(_GVP["inputs"]), bu_map=_GVP["bu_map"], kernel=e["kernel"],
        month=_month(e["month"]), report=e["report"],
    )


def _load(raw: Mapping[str, Any]) -> dict[str, Metric]:
    out: dict[str, Metric] = {}
    for name, entry in raw.items():
        e = dict(entry)
        family = e.pop("family", None)
        provisional = bool(e.pop("provisional", False))
        try:
            if family == "seat":
                out[name] = seat_metric(SeatSpec.model_validate({"name": name, **e}),
                                        builtin=True, provisional=provisional)
            elif family == "gvp":
                out[name] = _gvp_metric(name, {**e, "provisional": provisional})
            else:
                raise RegistryError(f"family {family!r} is not seat or gvp")
        except (ValidationError, RegistryError, KeyError) as exc:
            raise RegistryError(f"{REGISTRY_FILE}: metric {name}: {exc}") from None
    return out


BUILTIN: dict[str, Metric] = _load(_RAW["metrics"])
METRICS: tuple[str, ...] = tuple(BUILTIN)
SEAT_METRICS: tuple[str, ...] = tuple(m for m, x in BUILTIN.items() if x.is_seat)
GVP_METRICS: tuple[str, ...] = tuple(m for m, x in BUILTIN.items() if x.family == "gvp")

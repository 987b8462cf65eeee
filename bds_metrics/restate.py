"""Restatements: versions of a published period (SPEC §7 "Restatements").

A period (a billing day or month) is *restated* when a re-run changes its billing files
(any billing CSV's bytes, or the set of billing CSVs; the audit file and the manifest's
input counts are explanations, not billing values). Then:

- the previous version is kept whole under `<tenant>/history/<kind>/<period>/v<N>/`:
  every file its manifest lists, copied first, its manifest last (a history folder with a
  manifest is complete);
- the new manifest carries `version` (N + 1) and `supersedes` (SHA-256 of the replaced
  manifest's bytes); version 1 has no `supersedes`;
- `corrections_<stamp>.csv` is written in the period folder, `<stamp>` =
  `<YYYYMMDD|YYYYMM>_v<N+1>` (the period's file stamp and the version it introduces: no
  clock, so a re-run after a crash writes the same name and bytes); earlier corrections
  files stay and every one is listed in the manifest.

A re-run that changes no billing file keeps the version (and `supersedes`), so a re-run
on unchanged data stays byte-identical. Crash safety: the previous version reaches
history before its manifest leaves the period folder; when the folder has no manifest
(a crash between the two), the previous version is the newest complete history folder.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass, field

from . import storage

CORRECTIONS_HEADER = (
    "RecordDate", "Tier3AccountID", "Region", "MetricName", "AgentGroupName",
    "OldMessageSize", "NewMessageSize",
)
_KEY = ("RecordDate", "Tier3AccountID", "Region", "MetricName", "AgentGroupName")
_VERSION_DIR = re.compile(r"^v(\d+)$")


def is_billing_file(name: str) -> bool:
    """A billing CSV (not the audit, a corrections file or the manifest)."""
    return (name.endswith(".csv") and not name.startswith("audit_")
            and not name.startswith("corrections_"))


def is_corrections_file(name: str) -> bool:
    return name.startswith("corrections_") and name.endswith(".csv")


def output_folder(output_root: str, tenant: str, kind: str, label: str) -> str:
    """`<output_root>/<tenant>/<daily|monthly>/<label>`: a period's published folder."""
    return storage.join(output_root, tenant, kind, label)


def history_root(output_root: str, tenant: str, kind: str, label: str) -> str:
    """`<output_root>/<tenant>/history/<daily|monthly>/<label>`: its kept versions."""
    return storage.join(output_root, tenant, "history", kind, label)


@dataclass
class Version:
    """One stored version of a period: its number, folder and manifest."""

    number: int
    folder: str
    manifest: bytes
    doc: dict = field(repr=False)
    current: bool = False

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.manifest).hexdigest()


@dataclass
class Revision:
    """What publishing a new bundle means: its version, what it supersedes, extra files."""

    version: int
    supersedes: str | None
    files: dict[str, str]  # corrections files to publish with the bundle (carried or new)
    restated: bool = False


def _load(folder: str, number: int | None, current: bool) -> Version | None:
    mpath = storage.join(folder, "manifest.json")
    if not storage.exists(mpath):
        return None
    data = storage.read_bytes(mpath)
    doc = json.loads(data)
    n = int(doc.get("version", 1)) if number is None else number
    return Version(n, folder, data, doc, current)


def history_versions(output_root: str, tenant: str, kind: str, label: str) -> list[Version]:
    """Complete history folders (those with a manifest), oldest first."""
    root = history_root(output_root, tenant, kind, label)
    out = []
    numbers = sorted(int(m.group(1)) for m in map(_VERSION_DIR.match, storage.listdir(root)) if m)
    for n in numbers:
        v = _load(storage.join(root, f"v{n}"), n, False)
        if v is not None:
            out.append(v)
    return out


def versions(output_root: str, tenant: str, kind: str, label: str) -> list[Version]:
    """Every version of a period, oldest first, the published one last (`current=True`).

    A history folder numbered at or above the current version is a leftover of an
    interrupted restatement whose data came back unchanged; it is not listed.
    """
    cur = _load(output_folder(output_root, tenant, kind, label), None, True)
    hist = history_versions(output_root, tenant, kind, label)
    if cur is None:
        return hist
    return [v for v in hist if v.number < cur.number] + [cur]


def previous(output_root: str, tenant: str, kind: str, label: str) -> Version | None:
    """The version a new publication replaces: the published one, or, when an
    interrupted restatement left the folder without a manifest, the newest kept one."""
    cur = _load(output_folder(output_root, tenant, kind, label), None, True)
    if cur is not None:
        return cur
    hist = history_versions(output_root, tenant, kind, label)
    return hist[-1] if hist else None


def billing_rows(files: dict[str, bytes]) -> dict[tuple[str, ...], str]:
    """(RecordDate, Tier3AccountID, Region, MetricName, AgentGroupName) → MessageSize
    over the billing CSVs of `files` (name → bytes)."""
    out: dict[tuple[str, ...], str] = {}
    for name in sorted(files):
        if not is_billing_file(name):
            continue
        reader = csv.DictReader(io.StringIO(files[name].decode("utf-8")))
        if not set(_KEY) | {"MessageSize"} <= set(reader.fieldnames or ()):
            continue  # not a billing record file (no such file is published by bds)
        for row in reader:
            out[tuple(row[k] for k in _KEY)] = row["MessageSize"]
    return out


def corrections(old: dict[tuple[str, ...], str], new: dict[tuple[str, ...], str]) -> list[tuple]:
    """Rows whose MessageSize differs, then rows that disappeared (empty NewMessageSize);
    a row that appeared has an empty OldMessageSize. Tenant-level rows first, then by
    Tier3AccountID; within a scope in file order (metric, then region and group as in
    the billing file)."""
    rows = [(*k, old.get(k, ""), v) for k, v in new.items() if old.get(k) != v]
    rows += [(*k, v, "") for k, v in old.items() if k not in new]
    return sorted(rows, key=lambda r: (r[1] != "", r[1]))


def corrections_text(rows: list[tuple]) -> str:
    from .emission import csv_text

    return csv_text(CORRECTIONS_HEADER, rows)


def version_files(v: Version, names: list[str] | None = None) -> dict[str, bytes]:
    """The bytes of a version's files (those its manifest lists, or `names`)."""
    wanted = names if names is not None else [f["name"] for f in v.doc.get("files", [])]
    return {n: storage.read_bytes(storage.join(v.folder, n)) for n in wanted}


def keep_in_history(output_root: str, tenant: str, kind: str, label: str, v: Version) -> None:
    """Copy version `v` whole to `history/.../v<N>/`, its manifest last. Idempotent: a
    complete copy of the same manifest is left alone."""
    dest = storage.join(history_root(output_root, tenant, kind, label), f"v{v.number}")
    mpath = storage.join(dest, "manifest.json")
    if storage.exists(mpath) and storage.read_bytes(mpath) == v.manifest:
        return
    for name, data in version_files(v).items():
        storage.write_atomic(storage.join(dest, name), data)
    storage.write_atomic(mpath, v.manifest)


def revise(output_root: str, tenant: str, kind: str, label: str, stamp: str,
           files: dict[str, str]) -> Revision:
    """Decide the version of a new bundle (`files`: name → text) of a period, keeping the
    previous version in history first when the billing files change.

    Called by `emission.publish` before it touches the period folder. Raises whatever
    the storage raises (the publication then fails; the previous version stays).
    """
    prev = previous(output_root, tenant, kind, label)
    if prev is None:
        return Revision(1, None, {})
    prev_names = [f["name"] for f in prev.doc.get("files", [])]
    carried = {n: b.decode("utf-8") for n, b in
               version_files(prev, [n for n in prev_names if is_corrections_file(n)]).items()}
    old_sha = {f["name"]: f["sha256"] for f in prev.doc.get("files", [])
               if is_billing_file(f["name"])}
    new_sha = {n: hashlib.sha256(text.encode("utf-8")).hexdigest()
               for n, text in files.items() if is_billing_file(n)}
    if old_sha == new_sha:
        return Revision(prev.number, prev.doc.get("supersedes"), carried)
    keep_in_history(output_root, tenant, kind, label, prev)
    old = billing_rows(version_files(prev, [n for n in prev_names if is_billing_file(n)]))
    new = billing_rows({n: t.encode("utf-8") for n, t in files.items()})
    number = prev.number + 1
    carried[corrections_name(stamp, number)] = corrections_text(corrections(old, new))
    return Revision(number, prev.sha256, carried, restated=True)


def corrections_name(stamp: str, version: int) -> str:
    return f"corrections_{stamp}_v{version}.csv"


def diff(a: Version, b: Version) -> list[tuple]:
    """Billing rows that differ between two versions (as `corrections` rows, a → b)."""
    def rows(v: Version) -> dict[tuple[str, ...], str]:
        names = [f["name"] for f in v.doc.get("files", []) if is_billing_file(f["name"])]
        return billing_rows(version_files(v, names))

    return corrections(rows(a), rows(b))

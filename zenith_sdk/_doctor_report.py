"""What ``zenith doctor`` found: per key pattern, counts of entries and the problems they share."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import Any, Literal

from zenith_protocol.canonical import Deviation
from zenith_sdk.control.groups import GroupStatus

__all__ = ["DoctorReport", "Finding", "Issue", "PatternStats", "Severity", "excerpt", "visible"]

_MAX_FINDINGS_PER_PATTERN = 50
_BEFORE, _AFTER = 24, 40
"""Bytes shown before and after the first difference of a non-canonical entry."""

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    """One invalid entry: where it is and why it does not decode."""

    key: str
    kind: str
    reason: str
    where: str = ""

    def to_dict(self) -> dict[str, str]:
        """Plain data for ``--json``."""
        return {"key": self.key, "where": self.where, "kind": self.kind, "reason": self.reason}


@dataclass
class Issue:
    """Entries or keys of one pattern that share one problem: how many, and the first one found.

    ``kind`` is ``not_canonical``, ``missing_field`` or ``forbidden_field`` (an entry a writer got
    wrong), ``missing_ttl`` or ``long_ttl`` (a key's lifetime), ``stale`` (a pulse node) or
    ``orphaned`` (a processing list whose worker is gone). ``offset`` is the first byte where the
    stored value (``theirs``) and its canonical form (``ours``) differ; both are excerpts around it.
    """

    severity: Severity
    kind: str
    problem: str
    reason: str
    key: str
    where: str = ""
    offset: int | None = None
    ours: str = ""
    theirs: str = ""
    count: int = 1

    @classmethod
    def from_deviation(cls, deviation: Deviation, key: str, where: str) -> Issue:
        """The finding for one entry that is not canonical."""
        if deviation.field is not None:
            where = f"{where}, field {deviation.field}" if where else f"field {deviation.field}"
        ours = theirs = ""
        if deviation.offset is not None:
            ours, theirs = excerpt(deviation.ours, deviation.offset), excerpt(deviation.theirs, deviation.offset)
        return cls(
            "error", deviation.kind, deviation.problem, deviation.reason, key, where, deviation.offset, ours, theirs
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return {
            "severity": self.severity,
            "kind": self.kind,
            "problem": self.problem,
            "count": self.count,
            "key": self.key,
            "where": self.where,
            "reason": self.reason,
            "offset": self.offset,
            "ours": self.ours,
            "theirs": self.theirs,
        }


@dataclass
class PatternStats:
    """Counts for one key pattern (e.g. ``queue:<name>:failed``)."""

    pattern: str
    structure: str
    redis_type: str
    keys: int = 0
    entries: int = 0
    canonical: int = 0
    legacy: int = 0
    not_canonical: int = 0
    invalid: int = 0
    findings: list[Finding] = field(default_factory=list)
    issues: dict[tuple[str, str, str], Issue] = field(default_factory=dict)

    def add_invalid(self, finding: Finding) -> None:
        """Count an invalid entry, keeping the first few findings."""
        self.invalid += 1
        if len(self.findings) < _MAX_FINDINGS_PER_PATTERN:
            self.findings.append(finding)

    def add_issue(self, issue: Issue) -> None:
        """Count a problem; the first entry or key with it stays as the example."""
        slot = (issue.severity, issue.kind, issue.problem)
        if slot in self.issues:
            self.issues[slot].count += issue.count
        else:
            self.issues[slot] = issue

    @property
    def errors(self) -> int:
        """Invalid entries plus entries and keys with an error-level issue."""
        return self.invalid + sum(issue.count for issue in self.issues.values() if issue.severity == "error")

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return {
            "pattern": self.pattern,
            "structure": self.structure,
            "redisType": self.redis_type,
            "keys": self.keys,
            "entries": self.entries,
            "canonical": self.canonical,
            "legacy": self.legacy,
            "notCanonical": self.not_canonical,
            "invalid": self.invalid,
            "errors": self.errors,
            "findings": [finding.to_dict() for finding in self.findings],
            "issues": [issue.to_dict() for issue in self.issues.values()],
        }


@dataclass
class DoctorReport:
    """Everything ``zenith doctor`` found in one Redis."""

    redis_version: str
    keys_scanned: int = 0
    patterns: dict[str, PatternStats] = field(default_factory=dict)
    unrecognised: list[str] = field(default_factory=list)
    unrecognised_count: int = 0
    warnings: list[str] = field(default_factory=list)
    """What concerns no key pattern (an old Redis)."""
    stuck_groups: list[GroupStatus] = field(default_factory=list)
    """FIFO groups whose jobs nothing will run (``zenith recover`` lets them go on)."""
    orphaned: dict[str, list[str]] = field(default_factory=dict)
    """Processing lists whose worker is gone: worker id -> queues (running workers recover them)."""

    @property
    def invalid(self) -> int:
        """Number of invalid entries across every pattern."""
        return sum(stats.invalid for stats in self.patterns.values())

    @property
    def not_canonical(self) -> int:
        """Number of entries that carry ``protocolVersion`` but are not canonical, across every pattern."""
        return sum(stats.not_canonical for stats in self.patterns.values())

    @property
    def errors(self) -> int:
        """Invalid or non-canonical entries, keys without their TTL, and stuck groups."""
        return sum(stats.errors for stats in self.patterns.values()) + len(self.stuck_groups)

    @property
    def ok(self) -> bool:
        """True when nothing is an error (warnings do not count)."""
        return self.errors == 0

    def issues(self, severity: Severity) -> list[tuple[PatternStats, Issue]]:
        """Every issue of ``severity``, with its pattern, in pattern order."""
        return [
            (stats, issue)
            for stats in self.patterns.values()
            for issue in stats.issues.values()
            if issue.severity == severity
        ]

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return {
            "ok": self.ok,
            "redisVersion": self.redis_version,
            "keysScanned": self.keys_scanned,
            "errors": self.errors,
            "invalid": self.invalid,
            "notCanonical": self.not_canonical,
            "patterns": [stats.to_dict() for stats in self.patterns.values()],
            "unrecognisedCount": self.unrecognised_count,
            "unrecognised": self.unrecognised,
            "warnings": self.warnings,
            "stuckGroups": [
                {"group": g.id, "queue": g.queue, "held": g.held, "pending": g.pending} for g in self.stuck_groups
            ],
            "orphanedProcessingLists": [
                {"workerId": worker_id, "queues": queues} for worker_id, queues in self.orphaned.items()
            ],
        }


def _boundary(data: bytes, index: int) -> int:
    """Move ``index`` back to the start of the UTF-8 character it falls in."""
    while 0 < index < len(data) and data[index] & 0xC0 == 0x80:
        index -= 1
    return index


def excerpt(data: bytes, offset: int) -> str:
    """``data`` around ``offset`` as text, cut at character boundaries, with ``…`` where it was cut."""
    start = _boundary(data, max(0, offset - _BEFORE))
    end = _boundary(data, min(len(data), offset + _AFTER))
    text = data[start:end].decode("utf-8", "replace")
    return ("…" if start > 0 else "") + text + ("…" if end < len(data) else "")


_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp", "Co", "Cn"})


def visible(text: str) -> str:
    """``text`` with every control, format or separator character shown as ``<U+XXXX>``, for a terminal."""
    return "".join(f"<U+{ord(ch):04X}>" if unicodedata.category(ch) in _INVISIBLE else ch for ch in text)

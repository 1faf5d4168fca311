"""What a conformance run returns: one result per check, with the spec sections it comes from."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from zenith_protocol import CODECS, PROTOCOL_VERSION, ProtocolError
from zenith_protocol.canonical import check_canonical

__all__ = ["CheckResult", "CheckStatus", "ConformanceReport", "Verdict", "canonical_finding", "fields_of"]

_CONTEXT = 24
_MAX_PROBLEMS = 20


class CheckStatus(str, Enum):
    """``pass``; ``fail`` (a MUST of the spec is not met); ``warn`` (a SHOULD is not met)."""

    PASS = "pass"
    FAIL = "fail"
    WARN = "warn"


@dataclass(frozen=True)
class CheckResult:
    """One check: its name, what it checks, the spec sections, the outcome and what was wrong."""

    name: str
    title: str
    sections: tuple[str, ...]
    status: CheckStatus
    detail: str
    problems: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        """True unless the check failed (a warning passes)."""
        return self.status is not CheckStatus.FAIL

    def to_dict(self) -> dict[str, Any]:
        """The JSON form ``--json`` prints."""
        return {
            "name": self.name,
            "title": self.title,
            "sections": list(self.sections),
            "status": self.status.value,
            "detail": self.detail,
            "problems": list(self.problems),
        }


@dataclass(frozen=True)
class ConformanceReport:
    """The checks of one run against a worker or a producer."""

    role: str
    queue: str
    checks: tuple[CheckResult, ...]

    @property
    def ok(self) -> bool:
        """True when no check failed."""
        return all(check.passed for check in self.checks)

    def failed(self) -> list[str]:
        """Names of the checks that failed, in run order."""
        return [check.name for check in self.checks if not check.passed]

    def status(self, name: str) -> CheckStatus:
        """The status of the check called ``name``."""
        for check in self.checks:
            if check.name == name:
                return check.status
        raise KeyError(f"no check named {name!r} in this report: {[check.name for check in self.checks]}")

    def to_dict(self) -> dict[str, Any]:
        """The JSON form ``--json`` prints."""
        return {
            "ok": self.ok,
            "role": self.role,
            "queue": self.queue,
            "checks": [check.to_dict() for check in self.checks],
        }


@dataclass
class Verdict:
    """Problems found by one check: failures, and warnings for SHOULDs; ``result()`` sums them up."""

    name: str
    title: str
    sections: tuple[str, ...]
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def fail(self, problem: str) -> None:
        """Record something a MUST of the spec forbids."""
        self.problems.append(problem)

    def warn(self, problem: str) -> None:
        """Record something a SHOULD of the spec advises against."""
        self.warnings.append(problem)

    def result(self, passed: str) -> CheckResult:
        """The result: ``passed`` describes what held when nothing was found."""
        if self.problems:
            status, found = CheckStatus.FAIL, self.problems + self.warnings
            detail = found[0] if len(found) == 1 else f"{found[0]} (and {len(found) - 1} more)"
        elif self.warnings:
            status, found = CheckStatus.WARN, self.warnings
            detail = found[0] if len(found) == 1 else f"{found[0]} (and {len(found) - 1} more)"
        else:
            status, found, detail = CheckStatus.PASS, [], passed
        return CheckResult(self.name, self.title, self.sections, status, detail, tuple(found[:_MAX_PROBLEMS]))


def fields_of(raw: bytes | str) -> dict[str, Any] | None:
    """The members of a JSON object as written (unknown ones too), or None when it is not one."""
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _around(data: bytes, offset: int) -> str:
    start = max(0, offset - _CONTEXT)
    text = data[start : offset + _CONTEXT].decode("utf-8", "replace")
    return ("..." if start else "") + text + ("..." if offset + _CONTEXT < len(data) else "")


def canonical_finding(structure: str, raw: bytes | str, *, created: bool) -> str | None:
    """Why ``raw`` is not what a canonical writer writes (sections 2, 4.1, 6.1, 6.3, 8), or None when it is.

    ``created``: the writer made the value itself, so it must carry ``protocolVersion`` 2 (1.3);
    a value it rewrote keeps the version it was read with (a legacy one is not held to the form).
    """
    try:
        value = CODECS[structure].decode(raw)
    except ProtocolError as exc:
        shown = _around(raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass"), 0)
        return f"{structure} does not decode ({exc.kind.value}: {exc.reason}): {shown}"
    if created and getattr(value, "protocol_version", None) != PROTOCOL_VERSION:
        return f"{structure} written without protocolVersion {PROTOCOL_VERSION} (1.3)"
    deviation = check_canonical(structure, raw, value)
    if deviation is None:
        return None
    if deviation.offset is None:
        return f"{structure}: {deviation.reason}"
    offset = deviation.offset
    return (
        f"{structure} not canonical ({deviation.problem}) from offset {offset}: {deviation.reason}; "
        f"written {_around(deviation.theirs, offset)!r}, canonical {_around(deviation.ours, offset)!r}"
    )

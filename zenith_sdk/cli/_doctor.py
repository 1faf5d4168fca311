"""``zenith doctor``: validate a live Redis, or run the golden vectors offline."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from zenith_protocol.vectors import VectorResult, check_document
from zenith_sdk._doctor_report import visible
from zenith_sdk.cli._common import (
    CliSettings,
    add_output_options,
    add_redis_options,
    console,
    keyspace_from,
    print_json,
    redis_from,
    whole_number,
)
from zenith_sdk.control import GroupStatus
from zenith_sdk.doctor import DoctorReport, Issue, PatternStats, run_doctor
from zenith_sdk.spec_files import load_vector_documents

__all__ = ["register"]

EXIT_OK, EXIT_INVALID = 0, 1  # an unreachable Redis is main()'s: exit 2, like every command


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``doctor`` to the command line."""
    parser = commands.add_parser(
        "doctor",
        help="check every Zenith structure in a Redis, or run the golden vectors",
        description="Read every Zenith key (SCAN, never KEYS), decode each entry, compare each entry that carries "
        "protocolVersion byte for byte with its canonical form, and check the members writers must write and the "
        "TTLs keys must have. Exit status 0 when nothing is an error, 1 when something is (an invalid or "
        "non-canonical entry, a key without its TTL, a stuck group), 2 when Redis cannot be reached.",
    )
    add_redis_options(parser)
    add_output_options(parser)
    parser.add_argument(
        "--sample", type=whole_number(1), metavar="N", help="read at most N entries of each list, set or stream"
    )
    parser.add_argument("--vectors", action="store_true", help="run the spec's golden vectors offline (no Redis)")
    parser.add_argument("--vectors-dir", type=Path, metavar="DIR", help="vector folder (default: the spec's)")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace, settings: CliSettings) -> int:
    if args.vectors:
        return _run_vectors(args)
    return _run_redis(args, settings)


def _run_vectors(args: argparse.Namespace) -> int:
    results: list[VectorResult] = []
    for document in load_vector_documents(args.vectors_dir):
        results.extend(check_document(document))
    failed = [result for result in results if not result.ok]
    if args.json:
        print_json(
            {
                "ok": not failed,
                "total": len(results),
                "passed": len(results) - len(failed),
                "failed": [{"structure": r.structure, "name": r.name, "detail": r.detail} for r in failed],
            }
        )
        return EXIT_INVALID if failed else EXIT_OK
    table = Table(title="Golden vectors")
    for column in ("structure", "vectors", "passed", "failed"):
        table.add_column(column, justify="left" if column == "structure" else "right")
    for structure in sorted({result.structure for result in results}):
        mine = [result for result in results if result.structure == structure]
        bad = sum(1 for result in mine if not result.ok)
        table.add_row(Text(structure), str(len(mine)), str(len(mine) - bad), f"[red]{bad}[/]" if bad else "0")
    out = console()
    out.print(table)
    for result in failed:
        out.print(f"[red]FAIL[/] {escape(f'{result.structure}/{result.name}: {result.detail}')}")
    out.print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return EXIT_INVALID if failed else EXIT_OK


def _run_redis(args: argparse.Namespace, settings: CliSettings) -> int:
    space = keyspace_from(args, settings)
    client, where = redis_from(args, settings)
    err = console(stderr=True)
    try:
        client.ping()  # an unreachable Redis fails here, before the spinner starts
        columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
        with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as progress:
            task = progress.add_task(escape(f"scanning {where}"), total=None)

            def advance(keys: int) -> None:
                progress.update(task, description=escape(f"scanning {where}: {keys} keys checked"))

            report = run_doctor(
                client, keyspace=space, sample=args.sample, now_ms=int(time.time() * 1000), progress=advance
            )
    finally:
        client.close()
    if args.json:
        print_json({"redis": where, **report.to_dict()})
    else:
        _print_report(report, where)
    return EXIT_OK if report.ok else EXIT_INVALID


def _print_report(report: DoctorReport, where: str) -> None:
    out = console()
    out.print(escape(f"Redis {report.redis_version} at {where}: {report.keys_scanned} Zenith keys checked"))
    table = Table()
    for column in ("key pattern", "type", "keys", "entries", "canonical", "legacy", "not canonical", "invalid"):
        table.add_column(column, justify="left" if column in ("key pattern", "type") else "right")
    for stats in report.patterns.values():
        counts = (stats.keys, stats.entries, stats.canonical, stats.legacy)
        bad = (f"[red]{n}[/]" if n else "0" for n in (stats.not_canonical, stats.invalid))
        table.add_row(Text(stats.pattern), Text(stats.redis_type), *(str(n) for n in counts), *bad)
    out.print(table)
    for stats, issue in report.issues("error"):
        _print_issue(out, "[red]error[/]", stats, issue)
    for stats in report.patterns.values():
        for finding in stats.findings:
            where_in_key = f" ({finding.where})" if finding.where else ""
            detail = escape(f"{finding.key}{where_in_key}: {finding.kind}: {finding.reason}")
            out.print(f"[red]invalid[/] {detail}")
        if stats.invalid > len(stats.findings):
            out.print(escape(f"  ... and {stats.invalid - len(stats.findings)} more under {stats.pattern}"))
    for group in report.stuck_groups:
        out.print(f"[red]stuck[/] {escape(_stuck_text(group))}")
    for stats, issue in report.issues("warning"):
        _print_issue(out, "[yellow]warning[/]", stats, issue)
    for warning in report.warnings:
        out.print(f"[yellow]warning[/] {escape(warning)}")
    if report.unrecognised_count:
        listed = ", ".join(report.unrecognised[:10])
        out.print(escape(f"{report.unrecognised_count} keys under Zenith prefixes are not Zenith structures: {listed}"))
    if report.ok:
        out.print("[green]OK[/]: every entry with a protocolVersion is canonical; nothing invalid, no stuck group")
    else:
        out.print(f"[red]{report.errors} errors[/]: {_error_summary(report)}")


def _print_issue(out: Console, label: str, stats: PatternStats, issue: Issue) -> None:
    """One problem of one pattern: how many share it, the first one, and where its bytes differ."""
    unit, what = _ISSUE_TEXT[issue.kind]
    count = f"{issue.count} {unit if issue.count == 1 else _PLURAL[unit]}"
    out.print(f"{label} {escape(visible(f'{stats.pattern}: {count} {what}: {issue.reason}'))}")
    where_in_key = f" ({issue.where})" if issue.where else ""
    out.print(escape(visible(f"  e.g. {issue.key}{where_in_key}")))
    if issue.offset is not None:
        out.print(escape(f"  first difference at byte {issue.offset}:"))
        out.print(escape(visible(f"    ours:   {issue.ours}")))
        out.print(escape(visible(f"    theirs: {issue.theirs}")))


_PLURAL = {"entry": "entries", "key": "keys"}
_ISSUE_TEXT = {
    "not_canonical": ("entry", "not canonical"),
    "missing_field": ("entry", "missing a field writers must write"),
    "forbidden_field": ("entry", "with a field writers must not add"),
    "missing_ttl": ("key", "without TTL"),
    "long_ttl": ("key", "with a TTL longer than the spec's"),
    "stale": ("key", "stale"),
    "orphaned": ("key", "orphaned"),
}


def _error_summary(report: DoctorReport) -> str:
    ttl = sum(issue.count for _, issue in report.issues("error") if issue.kind == "missing_ttl")
    parts = [
        (report.invalid, "invalid entries"),
        (report.not_canonical, "entries not canonical"),
        (ttl, "keys without their TTL"),
        (len(report.stuck_groups), "stuck groups"),
    ]
    return ", ".join(f"{count} {text}" for count, text in parts if count)


def _stuck_text(group: GroupStatus) -> str:
    """One stuck group and what to do about it."""
    waiting = "1 job waits" if group.pending == 1 else f"{group.pending} jobs wait"
    state = f"{waiting} behind it" if group.pending else "it is held with nothing left"
    where = f" in queue {group.queue!r}" if group.queue else ""
    hint = (
        "`zenith recover` lets it go on"
        if group.queue or not group.pending
        else (f"its queue is unknown: `zenith recover --group-queue {group.id}=QUEUE` lets it go on")
    )
    return f"FIFO group {group.id!r}{where}: {state} and none of its jobs can run; {hint}"

"""``zenith spec``: regenerate or check the JSON Schemas in ``spec/schemas``."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.markup import escape

from zenith_sdk.cli._common import CliSettings, console
from zenith_sdk.spec_files import spec_dir, stale_schemas, write_schemas

__all__ = ["register"]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``spec`` to the command line."""
    parser = commands.add_parser("spec", help="generate the spec's JSON Schemas from the protocol models")
    actions = parser.add_subparsers(dest="spec_action", required=True, metavar="ACTION")
    schemas = actions.add_parser("schemas", help="write (or with --check, verify) spec/schemas/*.schema.json")
    schemas.add_argument("--out", type=Path, metavar="DIR", help="folder to write (default: the spec's schemas/)")
    schemas.add_argument("--check", action="store_true", help="write nothing; exit 1 if any file is stale")
    schemas.set_defaults(handler=_schemas)


def _schemas(args: argparse.Namespace, settings: CliSettings) -> int:
    folder = args.out or spec_dir() / "schemas"
    out = console()
    if args.check:
        stale = stale_schemas(folder)
        for name in stale:
            out.print(f"[red]stale[/] {escape(str(folder / name))}")
        out.print("schemas are up to date" if not stale else "run `zenith spec schemas` to regenerate")
        return 1 if stale else 0
    written = write_schemas(folder)
    out.print(escape(f"wrote {len(written)} schemas to {folder}"))
    return 0

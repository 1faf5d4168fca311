"""Find, load and write the spec's files: golden vectors and JSON Schemas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import zenith_protocol
from zenith_protocol import ConfigError
from zenith_protocol.schema import json_schemas

__all__ = [
    "OPERATIONS_STRUCTURE",
    "load_vector_documents",
    "schema_file_text",
    "spec_dir",
    "stale_schemas",
    "write_schemas",
]


def spec_dir() -> Path:
    """The spec folder: the copy shipped in the wheel, else ``spec/`` of a source checkout."""
    package = Path(zenith_protocol.__file__).resolve().parent
    for candidate in (package / "_spec", package.parent / "spec"):
        if (candidate / "vectors").is_dir():
            return candidate
    raise ConfigError("the spec folder was not found next to zenith_protocol; pass its path explicitly")


OPERATIONS_STRUCTURE = "operations"
"""The ``structure`` of the writer vectors (``operations.json``), which run against a Redis, not a decoder."""


def load_vector_documents(folder: Path | None = None) -> list[dict[str, Any]]:
    """Every decoding vector file in ``folder`` (default: the spec's ``vectors/``), sorted by name.

    The writer vectors (``"structure": "operations"``) are left out: they check what a producer,
    worker or control plane writes, which takes a Redis (PROTOCOL 13.1.1).
    """
    folder = folder or spec_dir() / "vectors"
    if not folder.is_dir():
        raise ConfigError(f"vector folder {folder} does not exist")
    documents = []
    for path in sorted(folder.glob("*.json")):
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"vector file {path} cannot be read: {exc}") from exc
        if not isinstance(document, dict):
            raise ConfigError(f"vector file {path} must hold a JSON object with 'structure' and 'vectors'")
        if document.get("structure") != OPERATIONS_STRUCTURE:
            documents.append(document)
    return documents


def schema_file_text(schema: dict[str, Any]) -> str:
    """The exact text of a committed schema file."""
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def _expected_files() -> dict[str, str]:
    return {f"{name}.schema.json": schema_file_text(schema) for name, schema in json_schemas().items()}


def stale_schemas(folder: Path | None = None) -> list[str]:
    """Schema files in ``folder`` that are missing, differ from the models, or are left over."""
    folder = folder or spec_dir() / "schemas"
    expected = _expected_files()
    stale = []
    for name, text in expected.items():
        path = folder / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(name)
    stale.extend(path.name for path in sorted(folder.glob("*.schema.json")) if path.name not in expected)
    return sorted(stale)


def write_schemas(folder: Path | None = None) -> list[str]:
    """Write every schema file into ``folder``, remove left-over ones; returns the names written."""
    folder = folder or spec_dir() / "schemas"
    folder.mkdir(parents=True, exist_ok=True)
    expected = _expected_files()
    for path in folder.glob("*.schema.json"):
        if path.name not in expected:
            path.unlink()
    for name, text in expected.items():
        (folder / name).write_text(text, encoding="utf-8")
    return sorted(expected)

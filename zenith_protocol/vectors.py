"""Run golden vectors (``spec/vectors/*.json``) against this package's codec.

A vector file is one JSON document::

    {"structure": "job", "vectors": [
        {"name": "...", "input": "<raw>", "form": "legacy", "output": {...}, "canonical": "<json>"},
        {"name": "...", "input": "<raw>", "error": "invalid_json"}]}

``input`` is the raw Redis value: a string for JSON and scalar structures, an object of
strings for a hash or a stream entry; ``inputBase64`` carries bytes that are not UTF-8,
and ``"inputAbsent": true`` stands for a missing key. A valid vector names the ``form``
(``canonical`` or ``legacy``) and the ``output``: for JSON structures the canonical
encoding parsed as JSON, for hashes the canonical field map, for scalars the decoded
value. ``canonical``, when present, is the exact canonical encoding. An invalid vector
names the expected :class:`~zenith_protocol.errors.ErrorKind` in ``error``.

This module does no I/O: callers load the files and pass the parsed documents.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from zenith_protocol import _json
from zenith_protocol.codec import CODECS, Codec
from zenith_protocol.errors import ProtocolError

__all__ = ["VectorResult", "check_document", "check_vector"]


@dataclass(frozen=True)
class VectorResult:
    """The outcome of one vector."""

    structure: str
    name: str
    ok: bool
    detail: str = ""


def _input(vector: Mapping[str, Any]) -> Any:
    if vector.get("inputAbsent"):
        return None
    if "inputBase64" in vector:
        return base64.b64decode(vector["inputBase64"])
    return vector["input"]


def _form(decoded: Any) -> str:
    items = decoded if isinstance(decoded, tuple) else (decoded,)
    legacy = any(getattr(item, "is_legacy", False) for item in items)
    return "legacy" if legacy else "canonical"


def _output(codec: Codec, decoded: Any) -> tuple[Any, str | None]:
    if codec.input_kind == "scalar":
        return decoded, None
    encoded = codec.encode(decoded)
    if isinstance(encoded, str):
        return _json.loads(encoded), encoded
    return encoded, None


def _check_valid(codec: Codec, vector: Mapping[str, Any], decoded: Any) -> str:
    problems = []
    expected_form = vector.get("form", "canonical")
    if codec.input_kind != "scalar" and _form(decoded) != expected_form:
        problems.append(f"form: expected {expected_form}, got {_form(decoded)}")
    output, canonical = _output(codec, decoded)
    if "output" in vector and output != vector["output"]:
        problems.append(f"output: expected {_json.dumps(vector['output'])}, got {_json.dumps(output)}")
    if "canonical" in vector and canonical != vector["canonical"]:
        problems.append(f"canonical: expected {vector['canonical']!r}, got {canonical!r}")
    return "; ".join(problems)


def check_vector(structure: str, vector: Mapping[str, Any]) -> VectorResult:
    """Decode one vector's input and compare with what it expects."""
    name = str(vector.get("name", "?"))
    codec = CODECS.get(structure)
    if codec is None:
        return VectorResult(structure, name, False, f"unknown structure {structure!r}")
    try:
        decoded = codec.decode(_input(vector))
    except ProtocolError as exc:
        if vector.get("error") == exc.kind.value:
            return VectorResult(structure, name, True)
        expected = f"error {vector['error']}" if "error" in vector else "a valid value"
        return VectorResult(structure, name, False, f"expected {expected}, got error {exc.kind.value}: {exc.reason}")
    if "error" in vector:
        return VectorResult(structure, name, False, f"expected error {vector['error']}, but it decoded")
    problems = _check_valid(codec, vector, decoded)
    return VectorResult(structure, name, not problems, problems)


def check_document(document: Mapping[str, Any]) -> Iterable[VectorResult]:
    """Check every vector of one vector file."""
    structure = str(document.get("structure", "?"))
    for vector in document.get("vectors", []):
        yield check_vector(structure, vector)

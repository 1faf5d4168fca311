"""Golden vectors (``spec/vectors/*.json``): run every vector, and check the files themselves.

The same files are run by the Go and PHP SDKs, so besides running each vector against this
package's codec, these tests guard the file format: a typo in a key (``"eror"``,
``"outptu"``) must fail here rather than make a vector silently check nothing.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from pathlib import Path
from typing import Any

import pytest
from wire_data import NODE_PUSH_ORDER

from zenith_protocol.codec import CODECS
from zenith_protocol.errors import ErrorKind
from zenith_protocol.vectors import check_document

VECTOR_DIR = Path(__file__).parents[2] / "spec" / "vectors"
MIN_TOTAL_VECTORS = 110

NAME_PATTERN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
DOCUMENT_KEYS = frozenset({"structure", "description", "vectors"})
INPUT_KEYS = frozenset({"input", "inputBase64", "inputAbsent"})
VALID_VECTOR_KEYS = frozenset({"name", "description", "form", "output", "canonical"}) | INPUT_KEYS
INVALID_VECTOR_KEYS = frozenset({"name", "description", "error"}) | INPUT_KEYS
FORMS = frozenset({"canonical", "legacy"})
ERROR_KINDS = frozenset(kind.value for kind in ErrorKind)

"""Field order of the Node producer's single push (WIRE_FACTS §9); canonical writers keep it."""

# Structures allowed to lack a valid or an invalid vector. None: every structure has input
# that decodes and input that does not (even ``paused_flag``, whose absent key decodes, refuses
# "yes"; and ``alert_rules``, whose absent key means the defaults, refuses a JSON object).
STRUCTURES_WITHOUT_VALID: frozenset[str] = frozenset()
STRUCTURES_WITHOUT_INVALID: frozenset[str] = frozenset()


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook``: a repeated key in a vector file would silently hide the first value."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _load(path: Path) -> dict[str, Any]:
    document = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=_reject_duplicate_keys)
    if not isinstance(document, dict):
        raise ValueError(f"{path.name} must hold a JSON object")
    return document


DOCUMENTS: dict[str, dict[str, Any]] = {
    path.stem: _load(path) for path in sorted(VECTOR_DIR.glob("*.json")) if path.stem != "operations"
}
"""The decoding vectors; ``operations.json`` holds writer vectors (tests/sdk/test_operation_vectors.py)."""


def _vectors(document: dict[str, Any]) -> list[dict[str, Any]]:
    vectors = document.get("vectors")
    if not isinstance(vectors, list):
        return []
    return [vector for vector in vectors if isinstance(vector, dict)]


def _cases() -> list[Any]:
    return [
        pytest.param(stem, index, id=f"{document.get('structure', stem)}/{vector.get('name', index)}")
        for stem, document in DOCUMENTS.items()
        for index, vector in enumerate(_vectors(document))
    ]


def _is_invalid(vector: dict[str, Any]) -> bool:
    return "error" in vector


# -- the vectors themselves ------------------------------------------------------------------------


@pytest.mark.parametrize(("stem", "index"), _cases())
def test_vector(stem: str, index: int) -> None:
    document = DOCUMENTS[stem]
    vector = _vectors(document)[index]

    results = list(check_document({"structure": document["structure"], "vectors": [vector]}))

    assert len(results) == 1
    assert results[0].ok, results[0].detail


# -- the vector format -----------------------------------------------------------------------------


def _input_problems(input_kind: str, vector: dict[str, Any]) -> list[str]:
    given = sorted(INPUT_KEYS & vector.keys())
    if len(given) != 1:
        return [f"needs exactly one of {sorted(INPUT_KEYS)}, has {given}"]
    if "inputAbsent" in vector:
        return [] if vector["inputAbsent"] is True else ["inputAbsent must be true"]
    if "inputBase64" in vector:
        try:
            base64.b64decode(vector["inputBase64"], validate=True)
        except (binascii.Error, TypeError, ValueError):
            return ["inputBase64 is not base64 text"]
        return []
    raw = vector["input"]
    if input_kind in ("hash", "stream"):
        if not isinstance(raw, dict) or not all(isinstance(value, str) for value in raw.values()):
            return [f"input of a {input_kind} structure must be an object of strings"]
    elif not isinstance(raw, str):
        return ["input must be a string (inputBase64 for bytes, inputAbsent for a missing key)"]
    return []


def _outcome_problems(input_kind: str, vector: dict[str, Any]) -> list[str]:
    if _is_invalid(vector):
        unknown = sorted(vector.keys() - INVALID_VECTOR_KEYS)
        problems = [f"unknown keys for an invalid vector: {unknown}"] if unknown else []
        if vector["error"] not in ERROR_KINDS:
            problems.append(f"error {vector['error']!r} is not an ErrorKind value")
        return problems
    unknown = sorted(vector.keys() - VALID_VECTOR_KEYS)
    problems = [f"unknown keys for a valid vector: {unknown}"] if unknown else []
    if vector.get("form") not in FORMS:
        problems.append(f"form must be one of {sorted(FORMS)}")
    if "output" not in vector:
        problems.append("a valid vector needs output")
    if "canonical" in vector:
        canonical = vector["canonical"]
        if input_kind != "json" or not isinstance(canonical, str):
            problems.append("canonical is the exact encoding of a JSON structure (a string)")
        elif json.loads(canonical) != vector.get("output"):
            problems.append("canonical, parsed, differs from output")
    return problems


def _vector_problems(structure: str, vector: dict[str, Any]) -> list[str]:
    """Everything wrong with one vector's shape (not its outcome, which ``test_vector`` checks)."""
    codec = CODECS.get(structure)
    if codec is None:
        return [f"unknown structure {structure!r}"]
    problems = []
    name = vector.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        problems.append(f"name {name!r} is not kebab-case")
    description = vector.get("description")
    if not isinstance(description, str) or not description.strip() or "\n" in description:
        problems.append("description must be one non-empty line")
    problems.extend(_input_problems(codec.input_kind, vector))
    problems.extend(_outcome_problems(codec.input_kind, vector))
    return problems


@pytest.mark.parametrize("stem", sorted(DOCUMENTS))
def test_vector_file_format(stem: str) -> None:
    document = DOCUMENTS[stem]
    assert document.keys() == DOCUMENT_KEYS, f"top-level keys must be {sorted(DOCUMENT_KEYS)}"
    assert document["structure"] == stem, "the file is named after its structure"
    assert isinstance(document["description"], str) and document["description"].strip()
    assert isinstance(document["vectors"], list) and document["vectors"]
    assert all(isinstance(vector, dict) for vector in document["vectors"])
    problems = {
        str(vector.get("name")): found
        for vector in _vectors(document)
        if (found := _vector_problems(document["structure"], vector))
    }
    assert not problems


@pytest.mark.parametrize("stem", sorted(DOCUMENTS))
def test_vector_file_is_pretty_printed(stem: str) -> None:
    text = (VECTOR_DIR / f"{stem}.json").read_text(encoding="utf-8")

    assert text == json.dumps(DOCUMENTS[stem], indent=2, ensure_ascii=False) + "\n"


_GOOD_INVALID: dict[str, Any] = {"name": "bad", "description": "Error case: x", "input": "{", "error": "invalid_json"}
_GOOD_VALID: dict[str, Any] = {"name": "ok", "description": "x", "input": "1", "form": "canonical", "output": 1}


@pytest.mark.parametrize(
    ("structure", "vector"),
    [
        pytest.param("job", {**_GOOD_INVALID, "eror": "invalid_json"}, id="typo-in-key"),
        pytest.param("job", {k: v for k, v in _GOOD_INVALID.items() if k != "error"} | {"eror": "x"}, id="no-error"),
        pytest.param("job", {**_GOOD_INVALID, "error": "invalid-json"}, id="unknown-error-kind"),
        pytest.param("job", {**_GOOD_INVALID, "output": {}}, id="invalid-with-output"),
        pytest.param("job", {**_GOOD_INVALID, "inputBase64": "e30="}, id="two-inputs"),
        pytest.param("job", {k: v for k, v in _GOOD_INVALID.items() if k != "input"}, id="no-input"),
        pytest.param("job", {**_GOOD_INVALID, "name": "Bad_Name"}, id="name-not-kebab"),
        pytest.param("job", {**_GOOD_INVALID, "description": "two\nlines"}, id="multi-line-description"),
        pytest.param("schedule", {**_GOOD_INVALID, "input": "{}"}, id="hash-input-as-text"),
        pytest.param("counter", {**_GOOD_VALID, "outptu": 1}, id="typo-in-valid-key"),
        pytest.param("counter", {k: v for k, v in _GOOD_VALID.items() if k != "form"}, id="no-form"),
        pytest.param("counter", {**_GOOD_VALID, "form": "old"}, id="unknown-form"),
        pytest.param("counter", {k: v for k, v in _GOOD_VALID.items() if k != "output"}, id="no-output"),
        pytest.param("counter", {**_GOOD_VALID, "canonical": "1"}, id="canonical-on-scalar"),
        pytest.param("nope", _GOOD_VALID, id="unknown-structure"),
    ],
)
def test_format_check_rejects_malformed_vectors(structure: str, vector: dict[str, Any]) -> None:
    assert _vector_problems(structure, vector)


def test_format_check_accepts_well_formed_vectors() -> None:
    assert _vector_problems("job", _GOOD_INVALID) == []
    assert _vector_problems("counter", _GOOD_VALID) == []


def test_duplicate_keys_in_a_vector_file_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate key 'error'"):
        json.loads('{"error": "invalid_json", "error": "missing_field"}', object_pairs_hook=_reject_duplicate_keys)


# -- coverage of the files -------------------------------------------------------------------------


def test_every_structure_has_a_vector_file() -> None:
    assert sorted(DOCUMENTS) == sorted(CODECS)


def test_enough_vectors() -> None:
    total = sum(len(_vectors(document)) for document in DOCUMENTS.values())

    assert total >= MIN_TOTAL_VECTORS


@pytest.mark.parametrize("stem", sorted(DOCUMENTS))
def test_vector_names_are_unique_in_their_file(stem: str) -> None:
    names = [str(vector.get("name")) for vector in _vectors(DOCUMENTS[stem])]

    assert sorted({name for name in names if names.count(name) > 1}) == []


@pytest.mark.parametrize("stem", sorted(DOCUMENTS))
def test_every_file_has_valid_and_invalid_vectors(stem: str) -> None:
    vectors = _vectors(DOCUMENTS[stem])

    if stem not in STRUCTURES_WITHOUT_VALID:
        assert any(not _is_invalid(vector) for vector in vectors), "no valid vector"
    if stem not in STRUCTURES_WITHOUT_INVALID:
        assert any(_is_invalid(vector) for vector in vectors), "no invalid vector"


def _legacy_job_vectors() -> list[Any]:
    return [
        pytest.param(vector, id=f"job/{vector['name']}")
        for vector in _vectors(DOCUMENTS.get("job", {}))
        if vector.get("form") == "legacy"
    ]


def _keys_in_order(text: str) -> list[str]:
    """Keys of the top-level object as written (inner objects are parsed first, the top one last)."""
    seen: list[list[str]] = []

    def record(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen.append([key for key, _ in pairs])
        return dict(pairs)

    json.loads(text, object_pairs_hook=record)
    return seen[-1]


@pytest.mark.parametrize("vector", _legacy_job_vectors())
def test_legacy_job_reencoding_keeps_node_push_order(vector: dict[str, Any]) -> None:
    assert "canonical" in vector, "a legacy job vector states its canonical re-encoding"
    keys = _keys_in_order(vector["canonical"])
    push_fields = [key for key in keys if key in NODE_PUSH_ORDER]

    assert push_fields == [key for key in NODE_PUSH_ORDER if key in push_fields], "push fields out of order"
    assert keys[: len(push_fields)] == push_fields, "another field is written before a push field"


def test_legacy_job_vectors_include_reordered_input() -> None:
    reordered = [
        vector["name"]
        for vector in _vectors(DOCUMENTS.get("job", {}))
        if vector.get("form") == "legacy"
        and "input" in vector
        and "className" in (keys := _keys_in_order(vector["input"]))
        and keys.index("className") < keys.index("data")
    ]

    assert reordered, "the push-order test needs a dead-letter vector with className before data"

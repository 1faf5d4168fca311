"""The committed JSON Schemas match the models, and describe the canonical forms the encoders write."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from zenith_protocol import CODECS
from zenith_protocol.schema import SCHEMA_BASE_URI, json_schemas
from zenith_sdk.spec_files import schema_file_text, spec_dir, stale_schemas, write_schemas

SCHEMAS = Path(__file__).parents[2] / "spec" / "schemas"
VECTORS = Path(__file__).parents[2] / "spec" / "vectors"


def test_committed_schemas_are_fresh() -> None:
    assert stale_schemas(SCHEMAS) == [], "run `zenith spec schemas` and commit spec/schemas"


def test_every_structure_with_a_wire_form_has_a_schema() -> None:
    assert set(json_schemas()) == set(CODECS) - {"event_fields"}


@pytest.mark.parametrize("name", sorted(json_schemas()))
def test_each_schema_is_a_draft_2020_12_document_with_its_id(name: str) -> None:
    schema = json_schemas()[name]
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"{SCHEMA_BASE_URI}{name}.schema.json"
    assert ":attr:" not in json.dumps(schema) and "``" not in json.dumps(schema)


def test_a_changed_model_makes_the_check_fail(tmp_path: Path) -> None:
    write_schemas(tmp_path)
    assert stale_schemas(tmp_path) == []
    job = tmp_path / "job.schema.json"
    job.write_text(job.read_text().replace('"minLength": 1', '"minLength": 2', 1))
    (tmp_path / "left-over.schema.json").write_text("{}")
    (tmp_path / "heartbeat.schema.json").unlink()
    assert stale_schemas(tmp_path) == ["heartbeat.schema.json", "job.schema.json", "left-over.schema.json"]
    write_schemas(tmp_path)
    assert stale_schemas(tmp_path) == []
    assert not (tmp_path / "left-over.schema.json").exists()


def _required(schema: dict[str, Any]) -> set[str]:
    return set(schema.get("required", []))


def test_canonical_vector_outputs_carry_every_required_field() -> None:
    schemas = json_schemas()
    checked = 0
    for path in sorted(VECTORS.glob("*.json")):
        document = json.loads(path.read_text())
        schema = schemas.get(document["structure"])
        if schema is None or schema.get("type") != "object":
            continue
        for vector in document["vectors"]:
            if "output" in vector and isinstance(vector["output"], dict):
                assert _required(schema) <= set(vector["output"]), (path.name, vector["name"])
                checked += 1
    assert checked > 50


def test_schema_files_are_written_in_their_exact_form() -> None:
    schema = json_schemas()["counter"]
    assert schema_file_text(schema).endswith("}\n")
    assert json.loads(schema_file_text(schema)) == schema
    assert spec_dir().joinpath("schemas").is_dir()

"""The ``zenith`` command line: the offline commands (vectors, schemas) and its error handling."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest

from zenith_sdk import __version__
from zenith_sdk.cli import COMMANDS, build_parser, main
from zenith_sdk.spec_files import spec_dir, stale_schemas

VECTORS = spec_dir() / "vectors"


def test_doctor_vectors_passes_on_the_shipped_vectors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--vectors"]) == 0
    out = capsys.readouterr().out
    assert "Golden vectors" in out and " 0 failed" in out


def test_doctor_vectors_json_counts_every_vector(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--vectors", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    documents = [json.loads(p.read_text()) for p in VECTORS.glob("*.json")]
    total = sum(len(d["vectors"]) for d in documents if d["structure"] != "operations")  # writer vectors need Redis
    assert report == {"ok": True, "total": total, "passed": total, "failed": []}


def _copy_vectors(tmp_path: Path) -> Path:
    folder = tmp_path / "vectors"
    shutil.copytree(VECTORS, folder)
    return folder


def test_a_wrong_expectation_fails_with_its_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _copy_vectors(tmp_path)
    counter = json.loads((folder / "counter.json").read_text())
    first_invalid = next(v for v in counter["vectors"] if "error" in v)
    first_invalid["error"] = "invalid_json"
    first_valid = next(v for v in counter["vectors"] if "output" in v)
    first_valid["output"] = -1
    counter["vectors"].append({"name": "no-such-structure-check", "input": "1", "form": "canonical", "error": "x"})
    (folder / "counter.json").write_text(json.dumps(counter))

    assert main(["doctor", "--vectors", "--vectors-dir", str(folder)]) == 1
    out = capsys.readouterr().out
    assert f"counter/{first_invalid['name']}" in out
    assert f"counter/{first_valid['name']}" in out
    assert "counter/no-such-structure-check" in out

    assert main(["doctor", "--vectors", "--vectors-dir", str(folder), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and len(report["failed"]) == 3


def test_an_unknown_structure_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "vectors"
    folder.mkdir()
    (folder / "x.json").write_text(json.dumps({"structure": "nonsense", "vectors": [{"name": "a", "input": "{}"}]}))
    assert main(["doctor", "--vectors", "--vectors-dir", str(folder)]) == 1
    assert "unknown structure" in capsys.readouterr().out


@pytest.mark.parametrize("content", ["{not json", "[1, 2]"])
def test_an_unreadable_vector_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str
) -> None:
    folder = tmp_path / "vectors"
    folder.mkdir()
    (folder / "bad.json").write_text(content)
    assert main(["doctor", "--vectors", "--vectors-dir", str(folder)]) == 2
    assert "bad.json" in capsys.readouterr().err


def test_a_missing_vector_folder_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--vectors", "--vectors-dir", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_spec_schemas_check_passes_then_writes_and_detects_staleness(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["spec", "schemas", "--check"]) == 0
    assert "up to date" in capsys.readouterr().out

    out_dir = tmp_path / "schemas"
    assert main(["spec", "schemas", "--check", "--out", str(tmp_path / "empty")]) == 1
    assert main(["spec", "schemas", "--out", str(out_dir)]) == 0
    assert stale_schemas(out_dir) == []
    (out_dir / "log.schema.json").write_text("{}")
    assert main(["spec", "schemas", "--check", "--out", str(out_dir)]) == 1
    assert "log.schema.json" in capsys.readouterr().out


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert __version__ in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main([])
    assert "COMMAND" in capsys.readouterr().err


def test_a_bad_prefix_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--queue-prefix", "q*:"]) == 2
    assert "SCAN" in capsys.readouterr().err


def test_environment_supplies_the_redis_url(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    assert main(["doctor"]) == 2
    assert "127.0.0.1:1" in capsys.readouterr().err
    monkeypatch.setenv("ZENITH_REDIS_URL", "http://wrong")
    assert main(["doctor"]) == 2
    assert "redis://" in capsys.readouterr().err


def _commands_of(parser: argparse.ArgumentParser) -> list[str]:
    (subparsers,) = (action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    return list(subparsers.choices)


def test_a_named_command_loads_only_its_module_and_the_table_of_modules_is_complete() -> None:
    every = _commands_of(build_parser())
    assert every == [name for names in COMMANDS.values() for name in names]
    for names in COMMANDS.values():
        for name in names:
            assert _commands_of(build_parser(["-v", name, "--help"])) == list(names)
    assert _commands_of(build_parser(["--version"])) == every

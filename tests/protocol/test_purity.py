"""``zenith_protocol`` stays pure: importing it loads no I/O library, and none of its modules does I/O."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import zenith_protocol

PACKAGE_DIR = Path(zenith_protocol.__file__).parent
MODULES = sorted(PACKAGE_DIR.glob("*.py"))

FORBIDDEN_LIBRARIES = frozenset(
    {
        "redis",
        "fakeredis",
        "psutil",
        "sqlalchemy",
        "starlette",
        "uvicorn",
        "jinja2",
        "croniter",
        "requests",
        "httpx",
        "httpcore",
        "h11",
        "anyio",
        "aiohttp",
        "urllib3",
        "websockets",
        "rich",
        "pydantic_settings",
        "psycopg",
        "pymysql",
        "zenith_sdk",
        "zenith_archive",
    }
)
"""Third-party and sibling packages: the protocol core imports none of them, even indirectly."""

FORBIDDEN_STDLIB = frozenset({"asyncio", "ssl", "http.client", "urllib.request", "smtplib", "subprocess", "sqlite3"})
"""Standard-library network and process clients no module of the package may import."""

FORBIDDEN_IMPORTS = (
    FORBIDDEN_LIBRARIES
    | FORBIDDEN_STDLIB
    | {
        "os",
        "pathlib",
        "io",
        "shutil",
        "socket",
        "tempfile",
        "glob",
        "urllib",
        "http",
        "importlib",
        "logging",
    }
)
"""What no module of the package may import itself: file system, processes, network, dynamic imports."""

FORBIDDEN_CALLS = frozenset({"open", "print", "input", "exec", "eval", "compile", "__import__", "breakpoint"})


_SPY = """
import importlib.abc, json, sys

importers = {}


class Spy(importlib.abc.MetaPathFinder):
    # Records, for each module imported for the first time, the module whose code asked for it.
    def find_spec(self, name, path, target=None):
        frame = sys._getframe(1)
        while frame is not None and frame.f_globals.get("__name__", "").startswith(("importlib", "_frozen")):
            frame = frame.f_back
        importers.setdefault(name, frame.f_globals.get("__name__", "") if frame is not None else "")
        return None


sys.meta_path.insert(0, Spy())
import zenith_protocol

print(json.dumps([sorted(sys.modules), importers]))
"""


def _loaded_by_import() -> tuple[list[str], dict[str, str]]:
    """Import the package in a fresh interpreter: every module loaded, and who imported each one first.

    What the standard library or a dependency loads for itself (``uuid`` loads ``platform``, which
    loads ``subprocess`` on Python 3.10) is imported by them, not by the package.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith(("COVERAGE_", "PYTHON"))}
    result = subprocess.run(
        [sys.executable, "-c", _SPY],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=PACKAGE_DIR.parent,
        env=env,
    )
    loaded, importers = json.loads(result.stdout)
    return loaded, importers


def _tree(path: Path) -> ast.AST:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def test_importing_the_package_loads_no_io_library() -> None:
    loaded, importers = _loaded_by_import()

    ours = sorted(name for name, importer in importers.items() if importer.startswith("zenith_protocol"))
    assert "zenith_protocol" in loaded and ours
    # What the package's own code imports: never a file, process or network module.
    assert [name for name in ours if _is_forbidden(name)] == []
    # No third-party I/O library and no sibling package comes in, not even through a dependency.
    assert sorted(name for name in loaded if name.split(".")[0] in FORBIDDEN_LIBRARIES) == []


def _imported_modules(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module is not None:
            names.add(node.module)
    return names


def _is_forbidden(module: str) -> bool:
    parts = module.split(".")
    return any(".".join(parts[:length]) in FORBIDDEN_IMPORTS for length in range(1, len(parts) + 1))


@pytest.mark.parametrize("path", MODULES, ids=[path.name for path in MODULES])
def test_no_module_imports_io(path: Path) -> None:
    assert sorted(module for module in _imported_modules(_tree(path)) if _is_forbidden(module)) == []


def _io_calls(tree: ast.AST) -> list[str]:
    calls = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in FORBIDDEN_CALLS | {"Path"}:
            calls.append(f"{func.id}()")
        elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            if func.value.id in {"os", "pathlib", "io", "sys", "shutil", "subprocess", "socket"}:
                calls.append(f"{func.value.id}.{func.attr}()")
            elif func.attr in {"read_text", "read_bytes", "write_text", "write_bytes", "open", "getenv"}:
                calls.append(f"{func.value.id}.{func.attr}()")
    return calls


@pytest.mark.parametrize("path", MODULES, ids=[path.name for path in MODULES])
def test_no_module_calls_io(path: Path) -> None:
    assert _io_calls(_tree(path)) == []


def test_the_checks_see_every_module() -> None:
    names = {path.name for path in MODULES}

    assert {"__init__.py", "codec.py", "keys.py", "jobs.py", "_json.py"} <= names


def test_the_checks_catch_io() -> None:
    sample = ast.parse(
        "import os\nfrom pathlib import Path\nfrom redis.client import Redis\n"
        "open('x')\nPath('y').read_text()\nos.getenv('Z')\nprint(1)\n"
    )

    assert sorted(module for module in _imported_modules(sample) if _is_forbidden(module)) == [
        "os",
        "pathlib",
        "redis.client",
    ]
    assert sorted(_io_calls(sample)) == ["Path()", "open()", "os.getenv()", "print()"]

"""Each package's ``__all__``: sorted as ruff's RUF022 sorts it, complete, and naming only what exists."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

PACKAGES = ["zenith_protocol", "zenith_sdk", "zenith_archive"]
ROOT = Path(__file__).resolve().parents[2]


def ruff_sort_key(name: str) -> tuple[int, list[tuple[int, int]]]:
    """RUF022's "isort-style" order: SCREAMING_SNAKE_CASE, then CamelCase, then the rest, each naturally sorted.

    Natural order compares digit runs by value and everything else by code point, so ``X9`` < ``X10``
    and ``A1`` < ``AB`` < ``A_B`` (digits < upper case < ``_`` < lower case).
    """
    if len(name) > 1 and name.upper() == name and any(char.isupper() for char in name):
        category = 0
    elif name[:1].isupper():
        category = 1
    else:
        category = 2
    parts = [(ord("0"), int(run)) if run.isdigit() else (ord(run), 0) for run in re.findall(r"[0-9]+|[^0-9]", name)]
    return category, parts


def test_the_sort_key_matches_ruff_on_tricky_names() -> None:
    # The order `ruff check --select RUF022 --fix` gives these names.
    ruff_order = ["A1", "AB", "A_B", "CODECS", "X9", "X10", "XA", "A", "Ab", "Codec", "Xa", "Z"]
    ruff_order += ["__version__", "_x", "a", "a1b", "ab", "b", "x9", "x10", "zA", "z_1"]

    assert sorted(reversed(ruff_order), key=ruff_sort_key) == ruff_order


def _init_tree(package: str) -> ast.Module | None:
    path = ROOT / package / "__init__.py"
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path)) if path.exists() else None


def _declared_all(tree: ast.Module) -> list[str] | None:
    for node in tree.body:
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        )
        value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
        if any(isinstance(target, ast.Name) and target.id == "__all__" for target in targets):
            assert isinstance(value, (ast.List, ast.Tuple)), "__all__ must be a literal list or tuple"
            names = []
            for item in value.elts:
                assert isinstance(item, ast.Constant) and isinstance(item.value, str)
                names.append(item.value)
            return names
    return None


def _imported_public_names(package: str, tree: ast.Module) -> set[str]:
    """Public names the ``__init__`` imports from the package's own modules."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            own = node.level > 0 or (node.module or "").split(".")[0] == package
            if own:
                names.update(alias.asname or alias.name for alias in node.names)
    return {name for name in names if not name.startswith("_")}


def _defined_public_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(target.id for target in node.targets if isinstance(target, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)) and not (
            isinstance(node, ast.ImportFrom) and node.module == "__future__"
        ):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return {name for name in names if not name.startswith("_")}


@pytest.mark.parametrize("package", PACKAGES)
def test_all_is_sorted_like_ruff(package: str) -> None:
    tree = _init_tree(package)
    declared = None if tree is None else _declared_all(tree)
    if declared is None:
        pytest.skip(f"{package} has no __all__ yet")

    assert declared == sorted(declared, key=ruff_sort_key)
    assert len(set(declared)) == len(declared)


@pytest.mark.parametrize("package", PACKAGES)
def test_all_names_only_what_exists(package: str) -> None:
    module = importlib.import_module(package)
    declared = getattr(module, "__all__", None)
    if declared is None:
        pytest.skip(f"{package} has no __all__ yet")

    assert [name for name in declared if not hasattr(module, name)] == []
    tree = _init_tree(package)
    assert tree is not None and _declared_all(tree) == list(declared)


@pytest.mark.parametrize("package", PACKAGES)
def test_all_lists_every_public_import(package: str) -> None:
    tree = _init_tree(package)
    if tree is None:
        return  # a namespace package so far: it exports nothing
    declared = _declared_all(tree)
    if declared is None:
        # Tolerated only while the package exports nothing at all.
        assert _defined_public_names(tree) == set(), f"{package} exports names but has no __all__"
        return

    assert sorted(_imported_public_names(package, tree) - set(declared)) == []


def test_protocol_exports_its_core() -> None:
    import zenith_protocol

    for name in ("CODECS", "KeySpace", "JobPayload", "ProtocolError", "decode_job", "encode_job", "retry_delay_s"):
        assert name in zenith_protocol.__all__

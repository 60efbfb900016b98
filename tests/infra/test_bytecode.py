"""Bytecode for the runtime's Python, compiled by Pyodide's CPython through Node (real compiler, no mock)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from infra import bytecode

SOURCES = {
    "pkg/__init__.py": "",
    "pkg/module.py": "VALUE = 1\n\ndef twice(x):\n    return 2 * x\n",
    "top.py": "import pkg.module\n",
}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("compiled")
    for name, text in SOURCES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    orphan = root / "pkg" / "__pycache__" / f"removed.{bytecode.CACHE_TAG}.pyc"
    orphan.parent.mkdir()
    orphan.write_bytes(b"left by a module since deleted")
    bytecode.compile_tree(root, "/var/task")
    return root


@pytest.fixture
def tree(compiled: Path, tmp_path: Path) -> Path:
    """A copy of the compiled tree, for a test to spoil."""
    return Path(shutil.copytree(compiled, tmp_path / "tree"))


def test_every_module_gets_checked_hash_bytecode_of_the_runtime(compiled: Path) -> None:
    assert bytecode.problems(compiled) == {}
    for name in SOURCES:
        header = bytecode.bytecode_path(compiled / name).read_bytes()[:8]
        assert header[:4] == bytecode.RUNTIME_MAGIC
        assert int.from_bytes(header[4:8], "little") == bytecode.CHECKED_HASH_FLAGS


def test_tracebacks_name_the_path_on_lambda(compiled: Path) -> None:
    assert b"/var/task/pkg/module.py" in bytecode.bytecode_path(compiled / "pkg/module.py").read_bytes()


def test_compiling_removes_runtime_bytecode_whose_source_is_gone(compiled: Path) -> None:
    assert not (compiled / "pkg" / "__pycache__" / f"removed.{bytecode.CACHE_TAG}.pyc").exists()


def test_a_changed_source_is_reported_stale(tree: Path) -> None:
    (tree / "pkg/module.py").write_text("VALUE = 2\n", encoding="utf-8")

    assert bytecode.problems(tree) == {tree / "pkg/module.py": "bytecode stale (the source changed since)"}


def test_a_new_module_without_bytecode_is_reported(tree: Path) -> None:
    (tree / "pkg/added.py").write_text("", encoding="utf-8")

    assert bytecode.problems(tree) == {tree / "pkg/added.py": "no bytecode"}


def test_bytecode_of_another_python_version_is_reported(tree: Path) -> None:
    cached = bytecode.bytecode_path(tree / "top.py")
    python_3_11 = (3495).to_bytes(2, "little") + b"\r\n"
    cached.write_bytes(python_3_11 + cached.read_bytes()[4:])

    assert bytecode.problems(tree) == {tree / "top.py": "bytecode of another Python version"}


def test_bytecode_left_of_a_removed_module_is_reported(tree: Path) -> None:
    (tree / "pkg/module.py").unlink()

    assert bytecode.problems(tree) == {
        bytecode.bytecode_path(tree / "pkg/module.py"): "bytecode of a module since removed"
    }


def test_timestamp_bytecode_is_reported_it_would_not_survive_the_zip(tree: Path) -> None:
    cached = bytecode.bytecode_path(tree / "top.py")
    data = cached.read_bytes()
    cached.write_bytes(data[:4] + (0).to_bytes(4, "little") + data[8:])

    assert bytecode.problems(tree) == {tree / "top.py": "bytecode not checked-hash"}


def test_check_exits_non_zero_listing_each_module(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert bytecode.main([str(tree), "--check"]) == 0
    (tree / "top.py").write_text("import os\n", encoding="utf-8")

    assert bytecode.main([str(tree), "--check"]) == 1
    assert capsys.readouterr().err == f"{tree / 'top.py'}: bytecode stale (the source changed since)\n"


def test_a_module_that_does_not_compile_fails_the_build_naming_it_and_why(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("x = (\n", encoding="utf-8")

    with pytest.raises(bytecode.BytecodeBuildError) as failure:
        bytecode.compile_tree(tmp_path, "/var/task")

    why = "SyntaxError: '(' was never closed"
    assert str(failure.value) == f"compiling {tmp_path} failed: {tmp_path / 'broken.py'}: {why}"


def test_a_missing_directory_fails_with_one_line(tmp_path: Path) -> None:
    with pytest.raises(bytecode.BytecodeBuildError, match="no such directory"):
        bytecode.compile_tree(tmp_path / "not-built", "/opt/python")

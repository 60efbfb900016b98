"""Benchmark 4 models the package as built: a shipped module counts as compiled at every cold start
exactly when the package lacks fresh bytecode of the runtime's Python for it."""

from __future__ import annotations

import shutil
from pathlib import Path

from bench import coldstart
from eventpipe.contract.paths import PROJECT_ROOT


def _copy_of_the_function_code(tmp_path: Path) -> Path:
    shutil.copytree(PROJECT_ROOT / "functions", tmp_path / "functions")
    return tmp_path


def test_the_built_package_ships_bytecode_for_every_module() -> None:
    shipped = coldstart._shipped_modules(PROJECT_ROOT)

    assert len(shipped) > 100
    assert [module.source for module in shipped if not module.has_bytecode] == []


def test_a_module_edited_since_the_build_counts_as_compiled_at_start(tmp_path: Path) -> None:
    root = _copy_of_the_function_code(tmp_path)
    edited = root / "functions" / "ingest" / "handler.py"
    edited.write_text(edited.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")

    shipped = coldstart._shipped_modules(root)

    assert [module.source for module in shipped if not module.has_bytecode] == [edited]

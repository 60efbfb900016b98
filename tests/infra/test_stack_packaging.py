"""Lambda packaging: one code asset of functions/ + schemas/, one dependency layer built without Docker,
both with the runtime Python's bytecode for every module."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from infra_template import Synthesized

from infra import bytecode


def _asset_dir(synth: Synthesized, code: dict[str, str]) -> Path:
    return synth.outdir / f"asset.{code['S3Key'].removesuffix('.zip')}"


def _assert_ships_fresh_runtime_bytecode_only(tree: Path) -> None:
    assert len(list(bytecode.modules(tree))) > 10
    assert bytecode.problems(tree) == {}, "run `make setup`: it compiles the bytecode"
    assert {path.name.split(".")[-2] for path in tree.rglob("*.pyc")} == {bytecode.CACHE_TAG}


def test_function_code_asset_holds_only_functions_and_schemas(dev: Synthesized) -> None:
    function = dev.props(dev.output_ref("IngestFunctionName"))
    asset_hash = function["Code"]["S3Key"].removesuffix(".zip")

    entries = {p.name for p in (dev.outdir / f"asset.{asset_hash}").iterdir()}

    assert entries == {"functions", "schemas"}
    assert (dev.outdir / f"asset.{asset_hash}" / "functions" / "ingest" / "handler.py").is_file()


def test_every_function_shares_the_code_asset_and_the_layer(kinds: Synthesized) -> None:
    functions = [r["Properties"] for r in kinds.of_type("AWS::Lambda::Function").values()]
    (layer_id, _) = kinds.only("AWS::Lambda::LayerVersion")

    assert len(functions) >= 3
    assert len({f["Code"]["S3Key"] for f in functions}) == 1
    assert all(f["Layers"] == [{"Ref": layer_id}] for f in functions)


def test_layer_targets_the_function_runtime_and_architecture(dev: Synthesized) -> None:
    (_, layer) = dev.only("AWS::Lambda::LayerVersion")

    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.14"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]


def test_missing_layer_build_fails_with_a_hint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from aws_cdk import App, Stack

    from infra.constructs import functions_package

    monkeypatch.setattr(functions_package, "LAYER_DIR", tmp_path / "not-built")

    with pytest.raises(functions_package.LayerNotBuiltError, match="run `make setup`"):
        functions_package.FunctionsPackage(Stack(App(), "S"), "Functions")


def test_functions_use_the_newest_python_runtime_cdk_offers() -> None:
    import re

    from aws_cdk import aws_lambda as lambda_

    from infra.constructs.functions_package import RUNTIME

    offered = [
        getattr(lambda_.Runtime, name) for name in dir(lambda_.Runtime) if re.fullmatch(r"PYTHON_3_\d+", name)
    ]
    newest = max(offered, key=lambda runtime: int(runtime.name.rsplit(".", 1)[1]))

    assert RUNTIME.name == newest.name == "python3.14"


def test_code_asset_ships_the_runtimes_bytecode_for_every_module_and_no_other(dev: Synthesized) -> None:
    function = dev.props(dev.output_ref("IngestFunctionName"))

    _assert_ships_fresh_runtime_bytecode_only(_asset_dir(dev, function["Code"]) / "functions")


def test_layer_ships_the_runtimes_bytecode_for_every_module_and_no_other(dev: Synthesized) -> None:
    (_, layer) = dev.only("AWS::Lambda::LayerVersion")

    _assert_ships_fresh_runtime_bytecode_only(_asset_dir(dev, layer["Properties"]["Content"]) / "python")


def test_synthesis_warns_when_a_module_would_be_compiled_at_every_cold_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from aws_cdk import App, Stack
    from aws_cdk.assertions import Annotations, Match

    from infra.constructs import functions_package

    code = Path(shutil.copytree(functions_package.CODE_DIR, tmp_path / "functions"))
    (code / "added.py").write_text("", encoding="utf-8")
    monkeypatch.setattr(functions_package, "CODE_DIR", code)
    stack = Stack(App(), "S")

    functions_package.FunctionsPackage(stack, "Functions")

    warning = r"1 file\(s\) under .* lack fresh bytecode .*added\.py: no bytecode"
    Annotations.from_stack(stack).has_warning("/S/Functions", Match.string_like_regexp(warning))


def test_synthesis_of_the_built_package_warns_of_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    from aws_cdk import App, Stack
    from aws_cdk.assertions import Annotations, Match

    from infra.constructs import functions_package

    stack = Stack(App(), "S")

    functions_package.FunctionsPackage(stack, "Functions")

    Annotations.from_stack(stack).has_no_warning("*", Match.any_value())

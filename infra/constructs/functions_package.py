"""The code asset and dependency layer shared by every Lambda function of the project.

One asset (repository root filtered to `functions/` and `schemas/`) so code finds the schemas at
`<asset root>/schemas`; one layer built by `make setup` with pip for arm64 / Python 3.14, no Docker.
Both ship the runtime Python's bytecode, compiled by `make setup` (infra/bytecode.py), and no other;
synthesis warns when a module's is missing or stale (it would be compiled at every cold start).
"""

from __future__ import annotations

from aws_cdk import Annotations, IgnoreMode
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra import bytecode
from infra.bytecode import CACHE_TAG, RUNTIME_PYTHON
from infra.package_layout import CODE_DIR, LAYER_DIR, REPO_ROOT

# Runtime.PYTHON_3_14, named after the Python the bytecode is compiled for (the build refuses a compiler
# of another version; the Makefile's `pip --python-version` is set apart)
RUNTIME: lambda_.Runtime = getattr(lambda_.Runtime, "PYTHON_{}_{}".format(*RUNTIME_PYTHON))
ARCHITECTURE = lambda_.Architecture.ARM_64

# Gitignore-style. Bytecode: only the runtime's (the build machine's Python leaves its own beside it).
BYTECODE_EXCLUDES = ["*.pyc", f"!*.{CACHE_TAG}.pyc"]
# Everything excluded, then the two trees the functions need re-included.
CODE_EXCLUDES = ["/*", "!/functions", "!/schemas", *BYTECODE_EXCLUDES, "functions/requirements.txt"]
LAYER_EXCLUDES = [*BYTECODE_EXCLUDES, ".stamp*"]


class LayerNotBuiltError(RuntimeError):
    pass


class FunctionsPackage(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        if not (LAYER_DIR / "python").is_dir():
            raise LayerNotBuiltError(f"{LAYER_DIR}/python is missing: run `make setup` to build the layer")
        self.code = lambda_.Code.from_asset(str(REPO_ROOT), exclude=CODE_EXCLUDES, ignore_mode=IgnoreMode.GIT)
        self.layer = lambda_.LayerVersion(
            self,
            "Dependencies",
            code=lambda_.Code.from_asset(str(LAYER_DIR), exclude=LAYER_EXCLUDES, ignore_mode=IgnoreMode.GIT),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="eventpipe Lambda dependencies (functions/requirements.txt)",
        )
        self._warn_of_missing_bytecode()

    def _warn_of_missing_bytecode(self) -> None:
        for tree in (CODE_DIR, LAYER_DIR / "python"):
            if found := bytecode.problems(tree):
                (path, reason) = next(iter(found.items()))
                Annotations.of(self).add_warning_v2(
                    "eventpipe:bytecode",
                    f"{len(found)} file(s) under {tree} lack fresh bytecode of Python "
                    f"{'.'.join(map(str, RUNTIME_PYTHON))} (e.g. {path}: {reason}); Lambda compiles such "
                    "modules at every cold start: run `make setup` before deploying",
                )

"""Benchmark 4 — cold start, like for like: what the ingest function's first invocation costs on top of
its real work, against `import boto3` plus the same two clients.

Each sample is a new `python` process with the environment the stack gives the function plus what
Lambda sets (interpreter start-up itself is excluded: it is the same for both sides). The judged figure
is `import handler + first invocation - a second invocation of the same size`, against the embedded
moto server: everything the first call sets up (boto3, its clients, the dataset registry, Powertools'
logger and metrics, schema compilation, the tracer if any) is counted, the request round trips both
calls make are not. Runs are interleaved so drift hits every variant alike.

Bytecode is modelled on the package as built: the function code and the layer ship the runtime
Python's bytecode, checked-hash, which `make setup` compiles (infra/bytecode.py); a shipped module
without it in the package (not compiled, or its source changed since) is compiled from source at every
cold start (Lambda's file system is read-only). The runtime's own boto3 and the standard library are
compiled. Each child reads bytecode from a private `PYTHONPYCACHEPREFIX`, filled once by this machine's
Python: the shipped modules' files are rewritten checked-hash (the runtime hashes each source), and
those of modules the package lacks bytecode for are removed. A variant removes every shipped module's
file: the package as it was before it shipped bytecode.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import py_compile
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import data
from bench.aws import EmbeddedAws
from bench.config import BenchConfig
from bench.events import object_created, sequencer
from bench.results import BenchResult
from bench.subject import HANDLER_MODULE, handler_environment
from functions.core.wiring import env as names
from infra import bytecode
from infra.package_layout import LAYER_PACKAGES

GOAL_RATIO = 1.2
_MARK = "BENCH "  # the child's result line; the handler's JSON logs share its stdout

# Every child reads both clocks: wall (what Lambda bills) and its own process CPU (steady on shared
# cores: another process running does not count, waiting for the CPU does not either).
_CLOCKS = """
import time
def _now():
    return time.perf_counter(), time.process_time()
def _since(start, end=None):
    end = end or _now()
    return end[0] - start[0], end[1] - start[1]
def _report(*spans):
    print("BENCH", *(span[0] for span in spans), "CPU", *(span[1] for span in spans))
"""
_TIMED = _CLOCKS + "started = _now()\n{code}\n_report(_since(started))\n"
_BOTO3 = "import boto3"
_BOTO3_CLIENTS = "import boto3\nboto3.client('s3')\nboto3.client('dynamodb')"

# Import + first invocation, then a second invocation of an object of the same size (its cost is the
# invocation's own work and round trips, which the first one also paid): the difference is the setup.
_FIRST_INVOCATION = (
    _CLOCKS
    + f"""
import json, sys
from bench.events import LambdaContext
first, second = json.loads(sys.argv[1])
started = _now()
import {HANDLER_MODULE} as module
cold = module.lambda_handler(first, LambdaContext())
cold_span = _since(started)
started = _now()
warm = module.lambda_handler(second, LambdaContext(aws_request_id="00000000-0000-4000-8000-000000000002"))
warm_span = _since(started)
for outcome in (cold, warm):
    if outcome.get("status") != "ingested":
        raise SystemExit(f"not ingested: {{outcome}}")
_report((cold_span[0] - warm_span[0], cold_span[1] - warm_span[1]), cold_span, warm_span)
"""
)

# What the Powertools Tracer adds once boto3 and the clients exist (as in the handler): the X-Ray SDK's
# import (its recorder builds a sampling connector: two botocore X-Ray clients, each in a new session
# that loads the endpoint data again) and then patching every module the SDK supports.
_TRACER_COST = (
    _CLOCKS
    + """
import boto3
boto3.client("s3"), boto3.client("dynamodb")
started = _now()
from aws_lambda_powertools import Tracer
tracer = Tracer(auto_patch=False)
created = _now()
tracer.patch()
_report(_since(started, created), _since(created))
"""
)

# What Lambda sets in every execution environment with active tracing (Powertools' Tracer turns itself
# off without LAMBDA_TASK_ROOT; our own switch needs the daemon address).
_LAMBDA_ONLY = {
    "AWS_LAMBDA_FUNCTION_NAME": "eventpipe-dev-ingest",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.14",
    "LAMBDA_TASK_ROOT": "/var/task",
    "_X_AMZN_TRACE_ID": "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=1",
    "AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000",
}
_SDK_TRACER_ON = {names.POWERTOOLS_TRACE_DISABLED: "false"}
RECORDS_PER_OBJECT = 10


def _environment(project_root: Path, endpoint: str | None, pycache: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_LAMBDA", "_X_AMZN"))}
    env |= handler_environment(endpoint=endpoint) | _LAMBDA_ONLY | extra
    env["PYTHONPATH"] = str(project_root)
    env["PYTHONPYCACHEPREFIX"] = str(pycache)  # bytecode only from there: never the work tree's
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env |= {"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"}
    env.pop("AWS_SESSION_TOKEN", None)
    return env


def _run_child(code: str, env: dict[str, str], cwd: Path, *arguments: str) -> dict[str, list[float]]:
    """The figures (seconds) the child printed on its `BENCH` line, by clock ("wall", "cpu")."""
    completed = subprocess.run(
        [sys.executable, "-c", code, *arguments],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    marked = [line for line in completed.stdout.splitlines() if line.startswith(_MARK)]
    if completed.returncode != 0 or not marked:
        last = (completed.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"{code.strip().splitlines()[0]!r} failed: {last}")
    wall, cpu = marked[-1].removeprefix(_MARK).split(" CPU ")
    return {"wall": [float(f) for f in wall.split()], "cpu": [float(f) for f in cpu.split()]}


class _Objects:
    """Fresh objects for each child: a second run must not find the first run's state item."""

    def __init__(self, aws: EmbeddedAws) -> None:
        self._s3 = aws.client("s3")
        self._resources = aws.create_contract_resources()
        self._count = 0

    def pair(self) -> str:
        events = []
        for _ in range(2):
            self._count += 1
            key = f"bench/cold start {self._count}.jsonl"
            body = data.jsonl_bytes(RECORDS_PER_OBJECT)
            put = self._s3.put_object(Bucket=self._resources.bucket, Key=key, Body=body)
            events.append(
                object_created(
                    bucket=self._resources.bucket,
                    key=key,
                    size=len(body),
                    etag=put["ETag"],
                    sequencer=sequencer(2),
                    version_id=put.get("VersionId"),
                )
            )
        return json.dumps(events)


@dataclasses.dataclass(frozen=True)
class _Shipped:
    """A module the package ships, as the children import it, and whether the package has its bytecode."""

    source: Path  # the file the children import (the work tree's, or the venv's for a layer package)
    has_bytecode: bool


def _shipped_modules(project_root: Path) -> list[_Shipped]:
    """The function code's modules and the layer's packages' (checked against the built layer's copy)."""
    shipped = [
        _Shipped(source, bytecode.problem(source) is None)
        for source in (project_root / "functions").rglob("*.py")
    ]
    requirements = (project_root / "functions" / "requirements.txt").read_text(encoding="utf-8")
    for line in requirements.splitlines():
        requirement = line.split("#", 1)[0].strip()
        if requirement:
            for file in importlib.metadata.distribution(requirement.split("==")[0]).files or []:
                if file.suffix == ".py":
                    in_layer = LAYER_PACKAGES / file
                    has = in_layer.is_file() and bytecode.problem(in_layer) is None
                    shipped.append(_Shipped(Path(str(file.locate())), has))
    return shipped


def _cached(cache: Path, source: Path) -> Path:
    return (
        cache / source.parent.relative_to(source.anchor) / f"{source.stem}.{sys.implementation.cache_tag}.pyc"
    )


def _bytecode_caches(shipped: list[_Shipped], work_dir: Path, fill: list[Any]) -> tuple[Path, Path, Path]:
    """Three bytecode caches: `compiled` holds every module the children import; `deployed` the same minus
    the shipped modules the package has no bytecode for; `source` minus every shipped module (Lambda
    compiles those at each cold start). `fill(env)` runs every child once."""
    work_dir.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="pycache-", dir=work_dir))
    compiled, deployed, source = base / "compiled", base / "deployed", base / "source"
    for run_child in fill:
        run_child(compiled, write=True)
    # Both spellings of each path: the children cache bytecode under the path they import from, which is
    # not the resolved one when the venv is reached through a symlink (a git worktree's `.venv`).
    spelled = [
        (path, module) for module in shipped for path in {module.source.absolute(), module.source.resolve()}
    ]
    for path, _ in spelled:
        cached = _cached(compiled, path)
        if cached.is_file():  # imported by a child: as the runtime reads it, checked against a source hash
            py_compile.compile(
                str(path), cfile=str(cached), invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH
            )
    shutil.copytree(compiled, deployed)
    shutil.copytree(compiled, source)
    for path, module in spelled:
        _cached(source, path).unlink(missing_ok=True)
        if not module.has_bytecode:
            _cached(deployed, path).unlink(missing_ok=True)
    return compiled, deployed, source


def _import_costs(code: str, env: dict[str, str], cwd: Path) -> dict[str, int]:
    """Cumulative microseconds per top-level package from `-X importtime` (first import only)."""
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    costs: dict[str, int] = {}
    for line in completed.stderr.splitlines():
        # "import time: <self us> | <cumulative us> | <indent><module>", indented by import depth
        parts = line.split("|")
        if len(parts) != 3 or not parts[0].startswith("import time:") or not parts[1].strip().isdigit():
            continue
        name = parts[2].strip()
        if "." not in name and not name.startswith("_"):
            costs[name] = max(costs.get(name, 0), int(parts[1]))
    return costs


def _heaviest_imports(module: str, env: dict[str, str], cwd: Path, top: int = 8) -> list[str]:
    """The packages that cost the most when importing `module` (interpreter start-up ones excluded)."""
    startup = _import_costs("pass", env, cwd)
    own = module.split(".", 1)[0]
    costs = {
        name: micros
        for name, micros in _import_costs(f"import {module}", env, cwd).items()
        if name not in startup and name != own
    }
    ranked = sorted(costs.items(), key=lambda item: item[1], reverse=True)[:top]
    return [f"{name} {micros / 1000:.0f} ms" for name, micros in ranked]


def run(config: BenchConfig, aws: EmbeddedAws) -> BenchResult:
    result = BenchResult("cold_start", "4 cold start")
    root = config.project_root
    aws.reset()
    objects = _Objects(aws)

    def child(code: str, *, sdk: bool = False, pair: bool = False) -> Any:
        def run_child(pycache: Path, *, write: bool = False) -> dict[str, list[float]]:
            env = _environment(root, aws.endpoint, pycache, **(_SDK_TRACER_ON if sdk else {}))
            if write:
                env.pop("PYTHONDONTWRITEBYTECODE")
            return _run_child(code, env, root, *([objects.pair()] if pair else []))

        return run_child

    timed = {
        name: child(_TIMED.format(code=code))
        for name, code in (("boto3", _BOTO3), ("clients", _BOTO3_CLIENTS))
    }
    first, first_sdk = child(_FIRST_INVOCATION, pair=True), child(_FIRST_INVOCATION, pair=True, sdk=True)
    tracer = child(_TRACER_COST, sdk=True)
    handler_import = child(_TIMED.format(code=f"import {HANDLER_MODULE}"))
    shipped = _shipped_modules(root)
    without = sum(1 for module in shipped if not module.has_bytecode)
    compiled, deployed, source = _bytecode_caches(
        shipped, config.work_dir, [*timed.values(), first, first_sdk, tracer]
    )
    variants: dict[str, Any] = {  # the baseline always with bytecode; the function as deployed unless named
        "boto3": lambda: timed["boto3"](compiled),
        "boto3_clients": lambda: timed["clients"](compiled),
        "import": lambda: handler_import(deployed),
        "first": lambda: first(deployed),
        "first_source": lambda: first(source),
        "first_sdk": lambda: first_sdk(deployed),
        "tracer": lambda: tracer(deployed),
    }
    deployed_env = _environment(root, aws.endpoint, deployed)
    result.inputs = {
        "handler_module": HANDLER_MODULE,
        "runs": config.light_runs,
        "records_per_invocation": RECORDS_PER_OBJECT,
        "measure": "perf_counter in a fresh interpreter (start-up excluded); first-invocation setup = "
        "import + first invocation - second invocation of an object of the same size (embedded moto)",
        "lambda_env": sorted(_LAMBDA_ONLY),
        "function_env": f"as the stack sets it ({names.POWERTOOLS_TRACE_DISABLED}="
        f"{deployed_env[names.POWERTOOLS_TRACE_DISABLED]}: Lambda active tracing, no X-Ray SDK)",
        "bytecode": f"the package ships the runtime's bytecode (checked-hash) for {len(shipped) - without} "
        f"of its {len(shipped)} modules, {without} compiled from source at start; boto3, botocore and the "
        "standard library from bytecode",
    }
    for measure in variants.values():  # warm the OS page cache; not counted
        measure()
    samples: dict[str, list[dict[str, list[float]]]] = {name: [] for name in variants}
    for _ in range(config.light_runs):  # interleaved, so drift hits every variant alike
        for name, measure in variants.items():
            samples[name].append(measure())

    def ms(name: str, index: int = 0, clock: str = "wall") -> list[float]:
        return [1000.0 * figures[clock][index] for figures in samples[name]]

    def ratio_to_baseline(name: str, clock: str = "wall") -> list[float]:
        pairs = zip(ms(name, clock=clock), ms("boto3_clients", clock=clock), strict=True)
        return [s / b for s, b in pairs]

    boto3_ms = result.add("import boto3", "ms", ms("boto3")).median
    clients_ms = result.add(
        "baseline: import boto3 + s3 and dynamodb clients", "ms", ms("boto3_clients")
    ).median
    import_ms = result.add("import handler (as deployed)", "ms", ms("import")).median
    setup_ms = result.add("import handler + first-invocation setup (as deployed)", "ms", ms("first")).median
    result.add(f"  first invocation incl. import ({RECORDS_PER_OBJECT} records)", "ms", ms("first", 1))
    result.add(f"  second invocation ({RECORDS_PER_OBJECT} records)", "ms", ms("first", 2))
    wall_ratio = result.add("ratio setup / baseline (as deployed)", "x", ratio_to_baseline("first")).median
    result.add("baseline, process CPU", "ms", ms("boto3_clients", clock="cpu"))
    result.add("setup as deployed, process CPU", "ms", ms("first", clock="cpu"))
    ratio = result.add(
        "ratio setup / baseline (as deployed), process CPU", "x", ratio_to_baseline("first", "cpu")
    ).median
    source_ms = result.add("setup if the package shipped no bytecode", "ms", ms("first_source")).median
    source_ratio = result.add(
        "ratio setup / baseline if the package shipped no bytecode, process CPU",
        "x",
        ratio_to_baseline("first_source", "cpu"),
    ).median
    sdk_ms = result.add("setup with the Powertools Tracer (X-Ray SDK)", "ms", ms("first_sdk")).median
    sdk_ratio = result.add(
        "ratio setup / baseline with the Powertools Tracer, process CPU",
        "x",
        ratio_to_baseline("first_sdk", "cpu"),
    ).median
    tracer_ms = result.add(
        "Powertools Tracer() without patching (X-Ray SDK import)", "ms", ms("tracer")
    ).median
    patch_ms = result.add(
        "Tracer.patch() of every module the X-Ray SDK supports", "ms", ms("tracer", 1)
    ).median
    result.goal(
        f"import + first-invocation setup <= {GOAL_RATIO:g}x import boto3 + the same clients "
        "(tracing on; process CPU)",
        ratio,
        ratio <= GOAL_RATIO,
    )
    result.notes.append(
        f"wall-clock medians: import boto3 {boto3_ms:.0f} ms, + s3 and dynamodb clients {clients_ms:.0f} ms; "
        f"handler import {import_ms:.0f} ms, + first-invocation setup {setup_ms:.0f} ms ({wall_ratio:.2f}x) "
        f"as deployed (Lambda active tracing, no X-Ray SDK; {without} shipped modules compiled at start); "
        f"{source_ms:.0f} ms if the package shipped no bytecode; {sdk_ms:.0f} ms with the Powertools Tracer, "
        f"whose X-Ray SDK costs {tracer_ms:.0f} ms to create and {patch_ms:.0f} ms to patch. By process CPU "
        f"(judged: steady on shared cores, and these steps wait on nothing but the CPU): {ratio:.2f}x as "
        f"deployed, {source_ratio:.2f}x without bytecode, {sdk_ratio:.2f}x with the Powertools Tracer"
    )
    heaviest = _heaviest_imports(HANDLER_MODULE, deployed_env, root)
    shutil.rmtree(compiled.parent, ignore_errors=True)
    if heaviest:
        result.notes.append("heaviest top-level packages (-X importtime, cumulative): " + ", ".join(heaviest))
    return result

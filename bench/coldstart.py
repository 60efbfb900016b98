"""Benchmark 4 — cold start: importing the ingest handler in a fresh interpreter vs `import boto3`.

Each sample is a new `python` process that times one `import` with perf_counter (interpreter start-up
itself is excluded: it is the same for both). Runs are interleaved so drift hits both sides alike.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bench.config import BenchConfig
from bench.results import BenchResult
from bench.subject import HANDLER_MODULE, handler_environment
from eventpipe.local.auth import LocalCredentials

_TIMED = "import time\nstarted = time.perf_counter()\n{code}\nprint(time.perf_counter() - started)\n"

# What the first invocation adds on top of the import (the handler defers it): the boto3 clients and,
# in Lambda with active tracing, Powertools' Tracer (the X-Ray SDK). Reported, not judged.
_FIRST_CALL_SETUP = (
    f"import {HANDLER_MODULE}\n"
    "from functions.core.wiring.lambda_services import base_services\n"
    "from functions.core.wiring.observability import get_tracer\n"
    "base_services()\n"
    "get_tracer()"
)
_BOTO3_CLIENTS = "import boto3\nboto3.client('s3')\nboto3.client('dynamodb')"

# What Lambda sets: with these, Powertools' Tracer is active (outside Lambda it disables itself).
_LAMBDA_ONLY = {
    "AWS_LAMBDA_FUNCTION_NAME": "eventpipe-dev-ingest",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.14",
    "_X_AMZN_TRACE_ID": "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=1",
    "AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000",
}


def _environment(project_root: Path, *, lambda_like: bool) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_LAMBDA", "_X_AMZN"))}
    env |= handler_environment(endpoint=None)
    env["PYTHONPATH"] = str(project_root)
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # never write .pyc into the work tree from a benchmark
    env |= {"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"}
    env |= LocalCredentials.generate().aws_environment()  # throwaway: the timed code calls no AWS
    env.pop("AWS_SESSION_TOKEN", None)
    if lambda_like:
        env |= _LAMBDA_ONLY
    return env


def _time_code(code: str, env: dict[str, str], cwd: Path) -> float:
    """Milliseconds that `code` takes in a fresh interpreter."""
    completed = subprocess.run(
        [sys.executable, "-c", _TIMED.format(code=code)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        last = (completed.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"{code.splitlines()[0]!r} failed: {last}")
    return float(completed.stdout.strip().splitlines()[-1]) * 1000.0


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


def run(config: BenchConfig) -> BenchResult:
    result = BenchResult("cold_start", "4 cold start")
    root = config.project_root
    outside, in_lambda = _environment(root, lambda_like=False), _environment(root, lambda_like=True)
    variants = {
        "boto3": ("import boto3", outside),
        "handler": (f"import {HANDLER_MODULE}", outside),
        "handler_in_lambda": (f"import {HANDLER_MODULE}", in_lambda),
        "boto3_clients": (_BOTO3_CLIENTS, in_lambda),
        "first_call_setup": (_FIRST_CALL_SETUP, in_lambda),
    }
    result.inputs = {
        "handler_module": HANDLER_MODULE,
        "runs": config.light_runs,
        "measure": "perf_counter around the code in a fresh interpreter (interpreter start-up excluded)",
        "lambda_env": sorted(_LAMBDA_ONLY),
    }
    for code, env in variants.values():  # warm the OS page cache; not counted
        _time_code(code, env, root)
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(config.light_runs):  # interleaved, so drift hits every variant alike
        for name, (code, env) in variants.items():
            samples[name].append(_time_code(code, env, root))

    boto3_ms = result.add("import boto3", "ms", samples["boto3"]).median
    local_ms = result.add("import handler (outside Lambda)", "ms", samples["handler"]).median
    lambda_ms = result.add(
        "import handler (Lambda env, tracing on)", "ms", samples["handler_in_lambda"]
    ).median
    ratios_local = [h / b for h, b in zip(samples["handler"], samples["boto3"], strict=True)]
    ratios_lambda = [h / b for h, b in zip(samples["handler_in_lambda"], samples["boto3"], strict=True)]
    result.add("ratio handler / boto3 (outside Lambda)", "x", ratios_local)
    ratio = result.add("ratio handler / boto3 (Lambda env)", "x", ratios_lambda).median
    clients_ms = result.add("import boto3 + s3 and dynamodb clients", "ms", samples["boto3_clients"]).median
    setup_ms = result.add(
        "import handler + first-call setup (clients, tracer)", "ms", samples["first_call_setup"]
    ).median
    result.goal("handler import <= 1.5x import boto3 (Lambda env)", ratio, ratio <= 1.5)
    result.notes.append(
        f"medians: boto3 {boto3_ms:.0f} ms, handler {local_ms:.0f} ms outside Lambda, "
        f"{lambda_ms:.0f} ms in Lambda env; the handler defers clients and the tracer to the first call: "
        f"import + that setup {setup_ms:.0f} ms vs boto3 + the same two clients {clients_ms:.0f} ms "
        f"({setup_ms / clients_ms:.2f}x)"
    )
    heaviest = _heaviest_imports(HANDLER_MODULE, in_lambda, root)
    if heaviest:
        result.notes.append("heaviest top-level packages (-X importtime, cumulative): " + ", ".join(heaviest))
    return result

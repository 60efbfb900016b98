"""Tracing is decided once per execution environment: on in Lambda with active tracing, off elsewhere."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from functions.core.wiring import observability

LAMBDA_WITH_XRAY = {
    "AWS_LAMBDA_FUNCTION_NAME": "eventpipe-dev-ingest",
    "AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000",
}


@pytest.mark.parametrize(
    ("env", "active"),
    [
        (LAMBDA_WITH_XRAY, True),
        ({**LAMBDA_WITH_XRAY, "POWERTOOLS_TRACE_DISABLED": "true"}, False),
        ({"AWS_LAMBDA_FUNCTION_NAME": "eventpipe-dev-ingest"}, False),  # tracing not active on the function
        ({}, False),  # tests, local mode
    ],
    ids=["lambda with active tracing", "disabled", "lambda without x-ray", "outside lambda"],
)
def test_tracing_is_active_only_in_lambda_with_an_xray_daemon(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], active: bool
) -> None:
    for name in ("AWS_LAMBDA_FUNCTION_NAME", "AWS_XRAY_DAEMON_ADDRESS", "POWERTOOLS_TRACE_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    assert observability.tracing_active() is active


class RecordingTracer:
    """Stands in for Powertools' Tracer, which would patch boto3 process-wide and send UDP segments."""

    def __init__(self) -> None:
        self.calls: list[Any] = []

    def capture_lambda_handler(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        def traced(event: Any, context: Any) -> Any:
            self.calls.append(event)
            return handler(event, context)

        return traced


def test_a_traced_handler_runs_inside_the_tracer_bound_at_its_first_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tracer = RecordingTracer()
    lookups: list[str] = []

    def get_tracer() -> RecordingTracer:
        lookups.append("get")
        return tracer

    monkeypatch.setattr(observability, "get_tracer", get_tracer)
    handler = observability.traced_handler(lambda event, context: {"echo": event})

    results = [handler({"n": 1}, None), handler({"n": 2}, None)]

    assert results == [{"echo": {"n": 1}}, {"echo": {"n": 2}}]
    assert tracer.calls == [{"n": 1}, {"n": 2}]
    assert lookups == ["get"]  # decided once, not per invocation


def test_without_tracing_the_handler_runs_untraced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(observability, "get_tracer", lambda: None)
    handler = observability.traced_handler(lambda event, context: "done")

    assert handler({}, None) == "done"

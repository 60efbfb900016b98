"""What a rule target receives (EventBridge user guide, "Transforming input")."""

from __future__ import annotations

import json

import pytest

from eventpipe.local.target_input import InputError, json_path, render_input

EVENT = {
    "id": "e-1",
    "time": "2026-01-01T00:00:00Z",
    "detail": {"object": {"key": "a b.json", "size": 3}, "tags": ["x", "y"], "ok": True},
}


def render(target: dict) -> str:
    return render_input(target, EVENT, rule_name="r", rule_arn="arn:aws:events:us-east-1:1:rule/r")


def test_without_input_settings_the_target_gets_the_whole_event() -> None:
    assert json.loads(render({"Arn": "x"})) == EVENT


def test_input_sends_the_constant_text() -> None:
    assert render({"Input": '{"fixed": 1}'}) == '{"fixed": 1}'


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$", EVENT),
        ("$.detail.object", EVENT["detail"]["object"]),
        ("$.detail.tags[1]", "y"),
        ("$.nope.x", None),
    ],
)
def test_input_path_selects_a_part_and_a_missing_path_is_null(path: str, expected: object) -> None:
    assert json.loads(render({"InputPath": path})) == expected


@pytest.mark.parametrize("path", ["detail", "$.a..b", "$.a[x]"])
def test_malformed_paths_are_rejected(path: str) -> None:
    with pytest.raises(InputError):
        json_path(EVENT, path)


def test_json_template_quotes_strings_outside_quotes_and_inlines_them_inside() -> None:
    transformer = {
        "InputPathsMap": {"key": "$.detail.object.key", "size": "$.detail.object.size", "ok": "$.detail.ok"},
        "InputTemplate": '{"key": <key>, "size": <size>, "ok": <ok>, "text": "<key> is <size> bytes"}',
    }

    assert json.loads(render({"InputTransformer": transformer})) == {
        "key": "a b.json",
        "size": 3,
        "ok": True,
        "text": "a b.json is 3 bytes",
    }


def test_predefined_variables_are_available() -> None:
    transformer = {"InputTemplate": '{"rule": <aws.events.rule-name>, "event": <aws.events.event.json>}'}

    assert json.loads(render({"InputTransformer": transformer})) == {"rule": "r", "event": EVENT}


def test_a_string_value_with_quotes_stays_valid_json_inside_a_string() -> None:
    event = {"detail": {"name": 'say "hi"'}}
    transformer = {"InputPathsMap": {"n": "$.detail.name"}, "InputTemplate": '{"text": "<n>!"}'}

    body = render_input({"InputTransformer": transformer}, event, rule_name="r", rule_arn="a")

    assert json.loads(body) == {"text": 'say "hi"!'}

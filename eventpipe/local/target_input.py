"""What a rule target receives: the event itself, or Input / InputPath / InputTransformer applied.

Follows the EventBridge user guide ("Transforming input"): paths are JSONPath of the `$.a.b[0]`
form; in a JSON template a placeholder outside quotes becomes the JSON value (strings get quotes),
inside quotes its raw text; a non-JSON template is plain text with values substituted raw.
"""

from __future__ import annotations

import json
import re
from typing import Any

_PATH_STEP = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]")
_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.\-]+)>")


class InputError(ValueError):
    """The target's input configuration cannot be applied to this event."""


def render_input(target: dict[str, Any], event: dict[str, Any], *, rule_name: str, rule_arn: str) -> str:
    """The body EventBridge hands to `target` for `event` (always text)."""
    if "Input" in target:
        return str(target["Input"])
    if "InputPath" in target:
        return json.dumps(json_path(event, str(target["InputPath"])))
    transformer = target.get("InputTransformer")
    if transformer:
        return _transform(transformer, event, rule_name=rule_name, rule_arn=rule_arn)
    return json.dumps(event)


def json_path(document: Any, path: str) -> Any:
    """Resolve a simple JSONPath (`$`, `$.a.b`, `$.a[0].b`); a missing path yields None like AWS."""
    if not path.startswith("$"):
        raise InputError(f"Invalid InputPath {path!r}: must start with $")
    value = document
    position = 1
    for match in _PATH_STEP.finditer(path, 1):
        if match.start() != position:
            raise InputError(f"Invalid JSONPath {path!r}")
        position = match.end()
        name, index = match.group(1), match.group(2)
        if name is not None:
            value = value.get(name) if isinstance(value, dict) else None
        else:
            at = int(index)
            value = value[at] if isinstance(value, list) and at < len(value) else None
    if position != len(path):
        raise InputError(f"Invalid JSONPath {path!r}")
    return value


def _transform(transformer: dict[str, Any], event: dict[str, Any], *, rule_name: str, rule_arn: str) -> str:
    paths = transformer.get("InputPathsMap") or {}
    values: dict[str, Any] = {name: json_path(event, path) for name, path in paths.items()}
    values.setdefault("aws.events.rule-name", rule_name)
    values.setdefault("aws.events.rule-arn", rule_arn)
    values.setdefault("aws.events.event", event)
    values.setdefault("aws.events.event.json", event)
    values.setdefault("aws.events.event.ingestion-time", event.get("time"))
    template = str(transformer.get("InputTemplate", ""))
    is_json = template.lstrip().startswith(("{", "[", '"'))
    out: list[str] = []
    in_string = False
    escaped = False
    last = 0
    # Walk the template once, tracking whether we are inside a JSON string literal.
    index = 0
    while index < len(template):
        char = template[index]
        if char == "<":
            match = _PLACEHOLDER.match(template, index)
            if match and match.group(1) in values:
                out.append(template[last:index])
                out.append(_substitute(values[match.group(1)], quoted=in_string or not is_json))
                index = last = match.end()
                continue
        if is_json:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = not in_string
        index += 1
    out.append(template[last:])
    return "".join(out)


def _substitute(value: Any, *, quoted: bool) -> str:
    if not quoted:
        return json.dumps(value)
    if isinstance(value, str):
        return json.dumps(value)[1:-1]  # escaped for the enclosing string literal
    return json.dumps(value)

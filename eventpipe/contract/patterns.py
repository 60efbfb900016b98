"""EventBridge event-pattern semantics, offline: validation with AWS-style messages, and matching.

moto accepts invalid patterns and does not match arrays of objects (aws-facts gap 9), so local mode
and `eventpipe pattern test` use this module instead. The model is the one AWS documents for its
matching engine:

- The event is flattened into leaf values keyed by their field path. Arrays are "crushed": every
  element sits under the array's own path, so a field matches when *any* element matches. Each leaf
  remembers which element of which array it came from, and a match never combines two fields taken
  from different elements of the same array (`{"records": {"type": ["b"], "id": [1]}}` needs one
  record with both).
- Only leaves count: an object, an empty array or an empty object is not a value. Hence `exists`
  works on leaf nodes only; `{"exists": false}` on a field holding an object matches. Inside arrays
  of objects, AWS's engine walks a rule's fields in name order and judges `exists: false` within the
  array elements already picked by the fields before it; this module does the same.
- Fields of a pattern are AND-ed, the values listed for one field are OR-ed, `$or` forks the pattern
  into alternatives.
- Value types are respected: the pattern string "300" does not match the number 300, while the
  numbers 300 and 3.0e2 are equal. `prefix`, `suffix`, `equals-ignore-case`, `wildcard` and `cidr`
  only match strings, `numeric` only numbers; `anything-but` matches every value except those it
  names (of any type), but never a missing field.

Compile once (`compile_pattern`) when a pattern is evaluated many times; `matches` caches compiled
patterns for callers that do not.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any, Final, NamedTuple

__all__ = [
    "CompiledPattern",
    "FieldMismatch",
    "FlatEvent",
    "InvalidPatternError",
    "MatchExplanation",
    "compile_pattern",
    "flatten_event",
    "matches",
    "validate_pattern",
]

FieldPath = tuple[str, ...]
# (array id, element index) for every array a leaf sits in, outermost first.
Membership = tuple[tuple[int, int], ...]
ValueTest = Callable[[Any], bool]

_OR: Final = "$or"
_OPERATORS: Final = frozenset(
    {"prefix", "suffix", "equals-ignore-case", "wildcard", "anything-but", "numeric", "exists", "cidr"}
)
_NUMERIC_LOWER_BOUNDS: Final = frozenset({">", ">="})
_NUMERIC_UPPER_BOUNDS: Final = frozenset({"<", "<="})


class InvalidPatternError(ValueError):
    """A pattern EventBridge would reject (PutRule: InvalidEventPatternException)."""

    def __init__(self, reason: str, path: Sequence[str] = ()) -> None:
        self.reason = reason
        self.path = tuple(path)
        where = f" at [Path: {'.'.join(self.path)}]" if self.path else ""
        # What follows "Reason: " in AWS's message, for wrappers that add the prefix themselves
        # (moto's InvalidEventPatternException does).
        self.aws_reason = f"{reason}{where}"
        super().__init__(f"Event pattern is not valid. Reason: {self.aws_reason}")


# --------------------------------------------------------------------------------------------------
# Event flattening


class _Leaf(NamedTuple):
    value: Any
    membership: Membership


@dataclass(frozen=True, slots=True)
class FlatEvent:
    """An event as EventBridge sees it: leaf values per field path. Flatten once, match many rules."""

    leaves: Mapping[FieldPath, tuple[_Leaf, ...]]


def flatten_event(event: Mapping[str, Any]) -> FlatEvent:
    if not isinstance(event, Mapping):
        raise TypeError(f"an event is a JSON object, not {type(event).__name__}")
    leaves: dict[FieldPath, list[_Leaf]] = {}
    array_ids = iter(range(1 << 62))

    def walk(value: Any, path: FieldPath, membership: Membership) -> None:
        if isinstance(value, dict | Mapping):  # dict first: the ABC check is slow
            for key, child in value.items():
                walk(child, (*path, str(key)), membership)
        elif isinstance(value, list | tuple):
            array_id = next(array_ids)
            for index, element in enumerate(value):
                walk(element, path, (*membership, (array_id, index)))
        else:
            leaves.setdefault(path, []).append(_Leaf(value, membership))

    walk(event, (), ())
    return FlatEvent({path: tuple(found) for path, found in leaves.items()})


# --------------------------------------------------------------------------------------------------
# Value tests (one per operator); each takes a leaf value and answers whether it matches.


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _same_scalar(expected: Any) -> ValueTest:
    """Exact match with JSON types respected (True is not 1, "1" is not 1)."""
    if expected is None:
        return lambda value: value is None
    if isinstance(expected, bool):
        return lambda value: isinstance(value, bool) and value is expected
    if _is_number(expected):
        return lambda value: _is_number(value) and value == expected
    ip = _parse_ip(expected)
    if ip is not None:
        # AWS compares IP-looking strings as addresses: "::1" matches "0:0:0:0:0:0:0:1".
        return lambda value: isinstance(value, str) and (value == expected or _parse_ip(value) == ip)
    return lambda value: isinstance(value, str) and value == expected


def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _fold(text: str) -> str:
    return text.casefold()


def _wildcard_regex(expression: str, path: FieldPath) -> re.Pattern[str]:
    """`*` matches any run of characters; `\\*` and `\\\\` are a literal star and backslash."""
    parts: list[str] = []
    index = 0
    while index < len(expression):
        char = expression[index]
        if char == "\\":
            escaped = expression[index + 1 : index + 2]
            if escaped not in ("*", "\\"):
                raise InvalidPatternError(f"Invalid escape character at pos {index}", path)
            parts.append(re.escape(escaped))
            index += 2
            continue
        if char == "*":
            if expression[index + 1 : index + 2] == "*":
                raise InvalidPatternError(f"Consecutive wildcard characters at pos {index}", path)
            parts.append(".*")
        else:
            parts.append(re.escape(char))
        index += 1
    return re.compile("".join(parts), re.DOTALL)


def _string_test(predicate: Callable[[str], bool]) -> ValueTest:
    return lambda value: isinstance(value, str) and predicate(value)


def _affix_test(operator: str, operand: Any, path: FieldPath) -> ValueTest:
    """`prefix` / `suffix`, optionally `{"equals-ignore-case": ...}` inside."""
    ignore_case = False
    if isinstance(operand, Mapping):
        if len(operand) != 1:
            raise InvalidPatternError("Only one key allowed in match expression", path)
        ((inner_operator, operand),) = operand.items()
        if inner_operator != "equals-ignore-case":
            raise InvalidPatternError(f"Unsupported {operator} pattern: {inner_operator}", path)
        ignore_case = True
    if not isinstance(operand, str):
        raise InvalidPatternError(f"{operator} match pattern must be a string", path)
    affix = _fold(operand) if ignore_case else operand
    normalise: Callable[[str], str] = _fold if ignore_case else str
    if operator == "prefix":
        return _string_test(lambda value: normalise(value).startswith(affix))
    return _string_test(lambda value: normalise(value).endswith(affix))


def _numeric_test(operand: Any, path: FieldPath) -> ValueTest:
    """`["=", x]`, `[">"|">=", x]`, `["<"|"<=", x]` or `[">"|">=", low, "<"|"<=", high]`."""
    if not isinstance(operand, list):
        raise InvalidPatternError("Value of numeric must be an array.", path)
    terms = list(operand)
    if not terms or not isinstance(terms[0], str):
        shown = json.dumps(terms[0]) if terms else "]"
        raise InvalidPatternError(f"Invalid member in numeric match: {shown}", path)
    first = terms[0]
    if first not in {"=", *_NUMERIC_LOWER_BOUNDS, *_NUMERIC_UPPER_BOUNDS}:
        raise InvalidPatternError(f"Unrecognized numeric range operator: {first}", path)
    conditions = [(first, _numeric_bound(terms, 1, first, path))]
    if len(terms) > 2:
        if first not in _NUMERIC_LOWER_BOUNDS:
            raise InvalidPatternError("Too many elements in numeric expression", path)
        second = terms[2]
        if not isinstance(second, str):
            raise InvalidPatternError(f"Bad value in numeric range: {json.dumps(second)}", path)
        if second not in _NUMERIC_UPPER_BOUNDS:
            raise InvalidPatternError(f"Bad numeric range operator: {second}", path)
        conditions.append((second, _numeric_bound(terms, 3, second, path)))
        if len(terms) > 4:
            raise InvalidPatternError("Too many terms in numeric range expression", path)
        if conditions[0][1] >= conditions[1][1]:
            raise InvalidPatternError("Bottom must be less than top", path)

    checks = tuple((_COMPARISONS[operator], bound) for operator, bound in conditions)

    def in_range(value: Any) -> bool:
        if not _is_number(value):
            return False
        number = float(value)
        return all(check(number, bound) for check, bound in checks)

    return in_range


_COMPARISONS: Final[Mapping[str, Callable[[float, float], bool]]] = {
    "=": lambda value, bound: value == bound,
    ">": lambda value, bound: value > bound,
    ">=": lambda value, bound: value >= bound,
    "<": lambda value, bound: value < bound,
    "<=": lambda value, bound: value <= bound,
}


def _numeric_bound(terms: list[Any], position: int, operator: str, path: FieldPath) -> float:
    bound: Any = terms[position] if position < len(terms) else None
    if not _is_number(bound) or not math.isfinite(bound):
        raise InvalidPatternError(f"Value of {operator} must be numeric", path)
    return float(bound)


def _cidr_test(operand: Any, path: FieldPath) -> ValueTest:
    if not isinstance(operand, str):
        raise InvalidPatternError("cidr match pattern must be a string", path)
    if operand.count("/") != 1:
        raise InvalidPatternError("Malformed CIDR, one '/' required", path)
    try:
        network = ipaddress.ip_network(operand, strict=False)
    except ValueError:
        raise InvalidPatternError(f"Nonstandard IP address: {operand}", path) from None

    def in_network(value: Any) -> bool:
        address = _parse_ip(value) if isinstance(value, str) else None
        return address is not None and address.version == network.version and address in network

    return in_network


def _anything_but_test(operand: Any, path: FieldPath) -> ValueTest:
    if isinstance(operand, Mapping):
        return _anything_but_expression(operand, path)
    if isinstance(operand, str) or _is_number(operand):
        excluded = [operand]
    elif isinstance(operand, list):
        excluded = list(operand)
        if any(not (isinstance(item, str) or _is_number(item)) for item in excluded):
            raise InvalidPatternError("Inside anything but list, start|null|boolean is not supported.", path)
        kinds = {isinstance(item, str) for item in excluded}
        if len(kinds) != 1:
            raise InvalidPatternError(
                "Inside anything but list, either all values are number or string, "
                "mixed type is not supported",
                path,
            )
    else:
        raise InvalidPatternError(
            "Value of anything-but must be an array or single string/number value.", path
        )
    tests = [_same_scalar(item) for item in excluded]
    return lambda value: not any(test(value) for test in tests)


def _anything_but_expression(operand: Mapping[str, Any], path: FieldPath) -> ValueTest:
    """`anything-but` applied to `prefix`, `suffix`, `equals-ignore-case` or `wildcard`."""
    if not operand:
        raise InvalidPatternError("Anything-But expression name not found", path)
    if len(operand) != 1:
        raise InvalidPatternError("Only one key allowed in match expression", path)
    ((operator, inner),) = operand.items()
    if operator in ("prefix", "suffix"):
        if not isinstance(inner, str):
            raise InvalidPatternError("prefix/suffix match pattern must be a string", path)
        if not inner:
            raise InvalidPatternError("Null prefix/suffix not allowed", path)
        excluded = _affix_test(operator, inner, path)
        return lambda value: not excluded(value)
    if operator in ("equals-ignore-case", "wildcard"):
        values = inner if isinstance(inner, list) else [inner]
        if not values or any(not isinstance(item, str) for item in values):
            raise InvalidPatternError(
                f"Inside anything-but/{operator} list, number|start|null|boolean is not supported.", path
            )
        if operator == "equals-ignore-case":
            folded = {_fold(item) for item in values}
            return lambda value: not (isinstance(value, str) and _fold(value) in folded)
        regexes = [_wildcard_regex(item, path) for item in values]
        return lambda value: not (isinstance(value, str) and any(regex.fullmatch(value) for regex in regexes))
    raise InvalidPatternError(f"Unsupported anything-but pattern: {operator}", path)


def _operator_test(expression: Mapping[str, Any], path: FieldPath) -> tuple[ValueTest | None, bool]:
    """Compile one `{operator: operand}` object: (test for present values, matches a missing field)."""
    if not expression:
        raise InvalidPatternError("Match expression name not found", path)
    if len(expression) != 1:
        raise InvalidPatternError("Only one key allowed in match expression", path)
    ((operator, operand),) = expression.items()
    if operator not in _OPERATORS:
        raise InvalidPatternError(f"Unrecognized match type {operator}", path)
    if operator == "exists":
        if not isinstance(operand, bool):
            raise InvalidPatternError("exists match pattern must be either true or false.", path)
        return ((lambda _value: True) if operand else None), not operand
    if operator in ("prefix", "suffix"):
        return _affix_test(operator, operand, path), False
    if operator == "equals-ignore-case":
        if not isinstance(operand, str):
            raise InvalidPatternError("equals-ignore-case match pattern must be a string", path)
        folded = _fold(operand)
        return _string_test(lambda value: _fold(value) == folded), False
    if operator == "wildcard":
        if not isinstance(operand, str):
            raise InvalidPatternError("wildcard match pattern must be a string", path)
        regex = _wildcard_regex(operand, path)
        return _string_test(lambda value: regex.fullmatch(value) is not None), False
    if operator == "numeric":
        return _numeric_test(operand, path), False
    if operator == "cidr":
        return _cidr_test(operand, path), False
    return _anything_but_test(operand, path), False


# --------------------------------------------------------------------------------------------------
# Pattern compilation


@dataclass(frozen=True, slots=True)
class _FieldRule:
    """The values allowed for one leaf path (OR-ed)."""

    path: FieldPath
    spec: tuple[Any, ...]
    tests: tuple[ValueTest, ...]
    matches_missing: bool

    @property
    def name(self) -> str:
        return ".".join(self.path)

    def options(self, event: FlatEvent) -> _FieldOptions:
        present = event.leaves.get(self.path, ())
        matching = [leaf.membership for leaf in present if any(test(leaf.value) for test in self.tests)]
        occurrences = [leaf.membership for leaf in present] if self.matches_missing else None
        return _FieldOptions(
            list(dict.fromkeys(matching)), None if occurrences is None else list(dict.fromkeys(occurrences))
        )

    def describe(self, event: FlatEvent) -> str:
        name = self.name
        present = event.leaves.get(self.path)
        wanted = json.dumps(list(self.spec))
        if not present:
            return f"{name} is missing, pattern wants {wanted}"
        values = ", ".join(json.dumps(leaf.value, default=str) for leaf in present[:5])
        return f"{name} = {values} does not match {wanted}"


def _compile_field(values: Any, path: FieldPath) -> _FieldRule:
    tests: list[ValueTest] = []
    matches_missing = False
    for item in values:
        if isinstance(item, Mapping):
            test, missing_ok = _operator_test(item, path)
            if test is not None:
                tests.append(test)
            matches_missing = matches_missing or missing_ok
        elif item is None or isinstance(item, str | bool) or _is_number(item):
            tests.append(_same_scalar(item))
        else:
            raise InvalidPatternError("Match value must be String, number, true, false, or null", path)
    if not values:
        raise InvalidPatternError("Empty arrays are not allowed", path)
    return _FieldRule(path, tuple(values), tuple(tests), matches_missing)


Branch = tuple[_FieldRule, ...]


def _compile_object(node: Mapping[str, Any], path: FieldPath, inside_or: bool) -> list[Branch]:
    """All AND-branches of an object node; `$or` multiplies them."""
    if not node:
        raise InvalidPatternError("Empty objects are not allowed", path)
    branches: list[Branch] = [()]
    for key, value in node.items():
        if not isinstance(key, str):
            raise InvalidPatternError("Field names must be strings", path)
        if key == _OR:
            alternatives = _compile_or(value, path)
            branches = [branch + alternative for branch in branches for alternative in alternatives]
            continue
        if inside_or and key in _OPERATORS:
            raise InvalidPatternError(
                f"{key} is a reserved field name which cannot be used inside $or.", path
            )
        child_path = (*path, key)
        if isinstance(value, Mapping):
            children = _compile_object(value, child_path, inside_or)
            branches = [branch + child for branch in branches for child in children]
        elif isinstance(value, list):
            rule = _compile_field(value, child_path)
            branches = [(*branch, rule) for branch in branches]
        else:
            raise InvalidPatternError(f'"{key}" must be an object or an array', child_path)
    return branches


def _compile_or(value: Any, path: FieldPath) -> list[Branch]:
    if not isinstance(value, list):
        raise InvalidPatternError("It must be an Array followed with $or.", path)
    if any(not isinstance(item, Mapping) for item in value):
        raise InvalidPatternError("Only JSON object is allowed in array of $or relationship.", path)
    if len(value) < 2:
        raise InvalidPatternError("There must have at least 2 Objects in $or relationship.", path)
    alternatives: list[Branch] = []
    for item in value:
        alternatives.extend(_compile_object(item, path, inside_or=True))
    return alternatives


# --------------------------------------------------------------------------------------------------
# Matching


@dataclass(frozen=True, slots=True)
class _FieldOptions:
    """How one field of a branch can be satisfied in one event."""

    matching: list[Membership]  # array positions of the leaves whose value matches
    occurrences: list[Membership] | None  # positions of every leaf, when `exists: false` is allowed

    @property
    def hopeless(self) -> bool:
        """No value matches, and absence cannot help (not allowed, or the field is outside any array)."""
        return not self.matching and (self.occurrences is None or () in self.occurrences)


def _branch_matches(branch: Branch, event: FlatEvent) -> bool:
    """Pick one matching leaf per field so that no two picks sit in different elements of one array.

    Fields are visited in name order, as AWS's engine does; an `exists: false` field counts as absent
    when none of its leaves sits in the array elements picked by the fields before it.
    """
    per_field = []
    for rule in branch:
        options = rule.options(event)
        if options.hopeless:
            return False
        per_field.append(options)
    chosen: dict[int, int] = {}

    def fits(membership: Membership) -> bool:
        return all(chosen.get(array, index) == index for array, index in membership)

    def pick(position: int) -> bool:
        if position == len(per_field):
            return True
        options = per_field[position]
        absent_here = options.occurrences is not None and not any(fits(m) for m in options.occurrences)
        if absent_here and pick(position + 1):
            return True
        for membership in options.matching:
            if not fits(membership):
                continue
            added = [(array, index) for array, index in membership if array not in chosen]
            chosen.update(added)
            if pick(position + 1):
                return True
            for array, _ in added:
                del chosen[array]
        return False

    return pick(0)


@dataclass(frozen=True, slots=True)
class FieldMismatch:
    path: str
    reason: str


@dataclass(frozen=True, slots=True)
class MatchExplanation:
    """Why a pattern did (not) match: for a miss, the closest alternative's failing fields."""

    matched: bool
    mismatches: tuple[FieldMismatch, ...] = field(default_factory=tuple)

    def summary(self) -> str:
        if self.matched:
            return "matches"
        return "; ".join(mismatch.reason for mismatch in self.mismatches) or "no alternative matches"


@dataclass(frozen=True, slots=True)
class CompiledPattern:
    """A validated pattern, ready to be matched against many events."""

    source: Mapping[str, Any]
    branches: tuple[Branch, ...]

    def matches(self, event: Mapping[str, Any] | FlatEvent) -> bool:
        flat = event if isinstance(event, FlatEvent) else flatten_event(event)
        return any(_branch_matches(branch, flat) for branch in self.branches)

    def explain(self, event: Mapping[str, Any] | FlatEvent) -> MatchExplanation:
        flat = event if isinstance(event, FlatEvent) else flatten_event(event)
        closest: tuple[FieldMismatch, ...] | None = None
        for branch in self.branches:
            if _branch_matches(branch, flat):
                return MatchExplanation(True)
            failing = tuple(_field_failures(branch, flat))
            if closest is None or len(failing) < len(closest):
                closest = failing
        return MatchExplanation(False, closest or ())


def _field_failures(branch: Branch, event: FlatEvent) -> Iterable[FieldMismatch]:
    failures = [
        FieldMismatch(rule.name, rule.describe(event)) for rule in branch if rule.options(event).hopeless
    ]
    if failures:
        return failures
    in_arrays = [rule.name for rule in branch if () not in rule.options(event).matching]
    names = ", ".join(in_arrays)
    reason = f"{names} each match, but not within one element of the same array (AWS requires one)"
    return [FieldMismatch(names, reason)]


def compile_pattern(pattern: Mapping[str, Any] | str) -> CompiledPattern:
    """Validate and compile a pattern (a dict, or its JSON text as PutRule receives it)."""
    if isinstance(pattern, str):
        try:
            pattern = json.loads(pattern)
        except json.JSONDecodeError as exc:
            raise InvalidPatternError(f"Filter is not valid JSON: {exc.msg}") from None
    if not isinstance(pattern, Mapping):
        raise InvalidPatternError("Filter is not an object")
    branches = _compile_object(pattern, (), inside_or=False)
    # AWS's engine walks a rule's fields in name order; array consistency of `exists: false` depends on it.
    ordered = tuple(tuple(sorted(branch, key=lambda rule: rule.name)) for branch in branches)
    return CompiledPattern(pattern, ordered)


def validate_pattern(pattern: Mapping[str, Any] | str) -> None:
    """Raise InvalidPatternError with AWS's reason if EventBridge would reject the pattern."""
    compile_pattern(pattern)


@lru_cache(maxsize=512)
def _compiled_from_text(canonical: str) -> CompiledPattern:
    return compile_pattern(canonical)


def matches(pattern: Mapping[str, Any] | str, event: Mapping[str, Any]) -> bool:
    """Does `event` match `pattern` with EventBridge semantics? Invalid patterns raise."""
    text = pattern if isinstance(pattern, str) else json.dumps(pattern, sort_keys=True)
    return _compiled_from_text(text).matches(event)

"""One typed input per top-level argument: chosen from the schema (else from the current
value), drawn as a Block Kit input, and read back from `view.state.values`.

The plan is computed from the approval alone, so rendering and parsing always agree on block ids
and input kinds without anything travelling through `private_metadata`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from bot.models import Approval
from bot.slack.cards.ids import INPUT_ACTION
from bot.slack.cards.json_errors import explain_json
from bot.slack.cards.text import Block, clip, measure, plain
from bot.slack.cards.words import at_least, at_most, sentence

__all__ = [
    "KEPT_NOTE",
    "ArgInput",
    "arg_block_id",
    "input_block",
    "plan_inputs",
    "read_input",
    "read_value",
]

#: Slack's cap on a text input; longer values are shown read-only and kept as they are
MAX_INPUT_CHARS = 3000
#: bytes of input blocks per modal, to stay well under Slack's 250 kB view limit
INPUT_BUDGET_BYTES = 120_000
MAX_OPTIONS = 100
KEPT_NOTE = "too large to edit here; kept as is"

Kind = Literal["text", "json", "number", "select", "checkbox", "kept"]
_SAFE_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,200}")
_INTEGER = re.compile(r"-?\d+")
_BOOLEAN_OPTIONS = (("true", "true"), ("false", "false"))


@dataclass(frozen=True)
class ArgInput:
    """How one argument is edited; `kept` means shown read-only and submitted unchanged."""

    name: str
    block_id: str
    kind: Kind
    required: bool
    schema: Mapping[str, Any] = field(default_factory=dict)
    initial: str | None = None
    options: tuple[tuple[str, str], ...] = ()
    integer: bool = False


def arg_block_id(name: str) -> str:
    """The input block of an argument: `arg:<name>`, or a hash for long or odd names."""
    if _SAFE_NAME.fullmatch(name):
        return f"arg:{name}"
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()
    return f"arg#{digest[:24]}"


def read_input(
    state_values: Mapping[str, Mapping[str, Any]], block_id: str
) -> dict[str, Any] | None:
    """The state of the one element in an input block, or None when Slack sent no such block."""
    actions = state_values.get(block_id)
    if not actions:
        return None
    element = actions.get(INPUT_ACTION, next(iter(actions.values())))
    return element if isinstance(element, dict) else None


def plan_inputs(approval: Approval) -> tuple[list[ArgInput], list[ArgInput]]:
    """Fields with their own block, then the overflow beyond Slack's 100 blocks (kept as is)."""
    schema = approval.args_schema or {}
    properties = schema.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    required = schema.get("required")
    required_names = set(required) if isinstance(required, list) else set()
    current = approval.current_args  # an N-of-M edit's, when someone edited already
    names = [*current, *(name for name in properties if name not in current)]
    # intro + inputs + comment, and one more block listing the overflow when there is one
    room = 98 if len(names) <= 98 else 97
    shown: list[ArgInput] = []
    spent = 0
    for name in names[:room]:
        prop = properties.get(name)
        prop = prop if isinstance(prop, dict) else {}
        is_required = name in required_names if approval.args_schema else name in current
        item = _typed(name, prop, is_required, current)
        if item.kind != "kept":
            cost = len(json.dumps(input_block(item)))
            if spent + cost > INPUT_BUDGET_BYTES:
                item = _kept(item)
            else:
                spent += cost
        shown.append(item)
    overflow = [ArgInput(name, arg_block_id(name), "kept", required=False) for name in names[room:]]
    return shown, overflow


def _kept(item: ArgInput) -> ArgInput:
    return ArgInput(item.name, item.block_id, "kept", item.required, item.schema)


def _typed(name: str, prop: Mapping[str, Any], required: bool, args: Mapping[str, Any]) -> ArgInput:
    """Choose the input for one argument from its schema, else from its current value."""
    present = name in args
    value = args.get(name)

    def make(kind: Kind, initial: str | None = None, **extra: Any) -> ArgInput:
        return ArgInput(name, arg_block_id(name), kind, required, prop, initial, **extra)

    enum = prop.get("enum")
    if isinstance(enum, list) and enum:
        options = _options(enum)
        values = {encoded for _, encoded in options or ()}
        if options is not None and (not present or _encode(value) in values):
            return make("select", _encode(value) if present else None, options=options)
    kind = _schema_type(prop)
    if kind is None and not _constrained(prop) and present:
        kind = _value_type(value)
    if kind == "boolean":
        if isinstance(value, bool):
            return make("checkbox", "true" if value else None)
        if not present or value is None:
            return make("select", options=_BOOLEAN_OPTIONS)
    if kind in ("integer", "number"):
        integer = kind == "integer"
        if not present or value is None:
            return make("number", integer=integer)
        number = _number_text(value, integer=integer)
        if number is not None:
            return make("number", number, integer=integer)
    if kind == "string" and (not present or value is None or isinstance(value, str)):
        text = value if isinstance(value, str) else None
        if text is not None and measure(text) > MAX_INPUT_CHARS:
            return make("kept")
        return make("text", text)
    if not present:
        return make("json")
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    if measure(text) > MAX_INPUT_CHARS:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return make("json", text) if measure(text) <= MAX_INPUT_CHARS else make("kept")


def _schema_type(prop: Mapping[str, Any]) -> str | None:
    declared = prop.get("type")
    types = [declared] if isinstance(declared, str) else declared
    if not isinstance(types, list):
        return None
    concrete = [kind for kind in types if kind != "null"]
    return concrete[0] if len(concrete) == 1 and isinstance(concrete[0], str) else None


def _constrained(prop: Mapping[str, Any]) -> bool:
    """True when the schema says something about the value we cannot turn into an input."""
    keys = ("type", "enum", "const", "anyOf", "oneOf", "allOf", "not", "$ref", "if")
    return any(key in prop for key in keys)


def _value_type(value: Any) -> str | None:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return None


def _number_text(value: Any, *, integer: bool) -> str | None:
    """The number as a number_input can show it, or None when it cannot (JSON text instead)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, int):
        return str(value) if abs(value) < 2**53 else None
    if integer or not math.isfinite(value) or abs(value) >= 1e15:
        return None
    text = repr(value)
    return None if "e" in text else text


def _encode(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _options(values: list[Any]) -> tuple[tuple[str, str], ...] | None:
    """`(label, JSON value)` per enum value, or None when Slack cannot offer them all."""
    options: dict[str, str] = {}
    for value in values:
        encoded = _encode(value)
        if measure(encoded) > 150:
            return None
        options.setdefault(encoded, value if isinstance(value, str) else encoded)
    if len(options) > MAX_OPTIONS:
        return None
    return tuple((label, encoded) for encoded, label in options.items())


# --- drawing and reading one input --------------------------------------------------------


def input_block(item: ArgInput) -> Block:
    element: dict[str, Any] = {"action_id": INPUT_ACTION}
    if item.kind == "number":
        element |= {"type": "number_input", "is_decimal_allowed": not item.integer}
        element |= _bounds(item)
    elif item.kind == "select":
        options = [_option(label, value) for label, value in item.options]
        element |= {"type": "static_select", "placeholder": plain("Choose…", 150)}
        element["options"] = options
        chosen = [option for option in options if option["value"] == item.initial]
        if chosen:
            element["initial_option"] = chosen[0]
    elif item.kind == "checkbox":
        checked = _option("true", "true")
        element |= {"type": "checkboxes", "options": [checked]}
        if item.initial == "true":
            element["initial_options"] = [checked]
    else:
        element |= {"type": "plain_text_input", "max_length": _max_length(item)}
        multiline = item.kind == "json" or "\n" in (item.initial or "")
        element["multiline"] = multiline or measure(item.initial or "") > 80
    if item.initial and item.kind in ("number", "text", "json"):
        element["initial_value"] = item.initial
    block: Block = {
        "type": "input",
        "block_id": item.block_id,
        "label": plain(item.name, 100),
        "element": element,
        "optional": _optional(item),
    }
    description = item.schema.get("description")
    hint = description if isinstance(description, str) and description.strip() else ""
    if item.kind == "json":
        hint = f"JSON. {hint}".strip()
    if hint:
        block["hint"] = plain(hint, 300)
    return block


def _optional(item: ArgInput) -> bool:
    # Slack refuses to submit an empty required input, so anything that may stay empty is
    # optional in Slack's eyes; `parse_edit_submission` applies the schema's `required`.
    if item.kind == "checkbox":
        return True
    return not item.required or item.initial is None or item.initial == ""


def _option(label: str, value: str) -> dict[str, Any]:
    return {"text": plain(label, 75), "value": value}


def _max_length(item: ArgInput) -> int:
    limit = item.schema.get("maxLength")
    current = measure(item.initial or "")
    if item.kind == "text" and isinstance(limit, int) and current <= limit:
        return max(1, min(MAX_INPUT_CHARS, limit))
    return MAX_INPUT_CHARS


def _bounds(item: ArgInput) -> dict[str, str]:
    """min_value/max_value for a number_input, left out when the current value breaks them."""
    low, high = _limit(item.schema.get("minimum")), _limit(item.schema.get("maximum"))
    if item.integer:
        low = None if low is None else math.ceil(low)
        high = None if high is None else math.floor(high)
    current = None if item.initial is None else float(item.initial)
    bounds: dict[str, str] = {}
    if low is not None and high is not None and low > high:
        return bounds
    if low is not None and (current is None or current >= low):
        bounds["min_value"] = _number_label(low)
    if high is not None and (current is None or current <= high):
        bounds["max_value"] = _number_label(high)
    return bounds


def _limit(value: Any) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if math.isfinite(value) and abs(value) < 1e15 else None


def _number_label(value: float | int) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def read_value(item: ArgInput, element: Mapping[str, Any]) -> tuple[bool, Any]:
    """`(filled, value)` from one element's state; raises ValueError with a message to show."""
    if item.kind == "checkbox":
        return True, bool(element.get("selected_options"))
    if item.kind == "select":
        option = element.get("selected_option")
        if not option:
            return False, None
        try:
            return True, json.loads(option["value"])
        except (KeyError, TypeError, ValueError):
            raise ValueError("Choose one of the options.") from None
    raw = element.get("value")
    if not isinstance(raw, str) or raw == "" or (item.kind != "text" and not raw.strip()):
        return False, None
    if item.kind == "text":
        return True, raw
    if item.kind == "json":
        return True, _loads(raw)
    return True, _parse_number(raw.strip(), item)


def _loads(raw: str) -> Any:
    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not a JSON number (write a number, or null)")

    try:
        return json.loads(raw, parse_constant=refuse)
    except json.JSONDecodeError as exc:
        raise ValueError(clip(sentence(explain_json(exc)), 150)) from None
    except ValueError as exc:  # NaN or Infinity, refused above
        raise ValueError(clip(sentence(f"not valid JSON: {exc}"), 150)) from None


def _parse_number(raw: str, item: ArgInput) -> int | float:
    number: int | float
    try:
        number = int(raw) if _INTEGER.fullmatch(raw) else float(raw)
    except ValueError:
        raise ValueError("Must be a number.") from None
    if isinstance(number, float):
        if not math.isfinite(number):
            raise ValueError("Must be a finite number.")
        if item.integer:
            if not number.is_integer():
                raise ValueError("Must be a whole number.")
            number = int(number)
    # the words and number formatting of a schema's own refusal (`words.explain_error`)
    low, high = _limit(item.schema.get("minimum")), _limit(item.schema.get("maximum"))
    if low is not None and number < low:
        raise ValueError(sentence(f"must be {at_least(low)}"))
    if high is not None and number > high:
        raise ValueError(sentence(f"must be {at_most(high)}"))
    return number

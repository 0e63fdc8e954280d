"""What the edit modal says when a schema refuses a value: the rule that was broken, in a
person's words, with numbers written the way hints write them ("at most 10,000").

A schema check explains itself in its own terms ("'latest' does not match
'^\\d+\\.\\d+\\.\\d+$'", "['eu-west-1', 'us-east-1', 'ap-south-1'] is too long"). The person
editing sees the argument's label above the message, so a phrase here says only what the value
must be: "must look like 1.2.3" (`examples`), "must have at most 2 items". Typed JSON that does
not parse is `json_errors`'.

Every phrase is plain text for Slack's inline errors; agent text in it (enum values, names,
patterns) is cut short.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from jsonschema.exceptions import ValidationError

from bot.slack.cards.examples import pattern_example
from bot.slack.cards.text import clip

__all__ = [
    "at_least",
    "at_most",
    "explain_error",
    "explain_message",
    "full_stop",
    "number",
    "required_name",
    "sentence",
]

#: enum values listed before "or N more"
MAX_CHOICES = 10
CHOICE_CHARS = 40
PATTERN_CHARS = 80
NAME_CHARS = 40

_TYPES = {
    "integer": "a whole number",
    "number": "a number",
    "string": "text",
    "boolean": "true or false",
    "array": "a list",
    "object": "an object",
    "null": "null",
}
_FORMATS = {
    "email": "an email address",
    "idn-email": "an email address",
    "date-time": "a date and time like 2026-01-31T09:30:00Z",
    "date": "a date like 2026-01-31",
    "time": "a time like 09:30:00Z",
    "duration": "a duration like P1DT2H",
    "uri": "a full URL like https://example.com/path",
    "iri": "a full URL like https://example.com/path",
    "uri-reference": "a URL or a path",
    "hostname": "a host name like example.com",
    "idn-hostname": "a host name like example.com",
    "ipv4": "an IPv4 address like 192.0.2.1",
    "ipv6": "an IPv6 address like 2001:db8::1",
    "uuid": "a UUID like 123e4567-e89b-12d3-a456-426614174000",
    "regex": "a regular expression",
    "json-pointer": "a JSON pointer like /a/b",
}


def sentence(phrase: str) -> str:
    """`phrase` as a sentence: first letter capitalised (not a name's: `argsSchema` stays),
    ending with a full stop."""
    phrase = phrase.strip()
    first = phrase.split(" ", 1)[0]
    if first.isalpha() and first.islower():
        phrase = phrase[0].upper() + phrase[1:]
    return full_stop(phrase)


def full_stop(text: str) -> str:
    """`text` ending with one full stop (or the mark it already ends with)."""
    text = text.rstrip()
    return text if not text or text.endswith((".", "?", "!", "…")) else text + "."


def number(value: float | int) -> str:
    """A number as people write it: `10,000`, `0.5`, `-1,234.75`."""
    if isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)
    if isinstance(value, int):
        return f"{value:,}"
    text = repr(value)
    if not re.fullmatch(r"-?\d+\.\d+", text):
        return text  # 1e-07, inf
    sign, digits = ("-", text[1:]) if text.startswith("-") else ("", text)
    whole, fraction = digits.split(".")
    return f"{sign}{int(whole):,}.{fraction}"


def at_least(value: float | int) -> str:
    """`at least 1`: the same words in a hint and in the error under it."""
    return f"at least {number(value)}"


def at_most(value: float | int) -> str:
    """`at most 10,000`."""
    return f"at most {number(value)}"


# -- schema errors -----------------------------------------------------------------------------


def explain_error(error: ValidationError) -> str:
    """What the value at `error`'s path must be, as a phrase ("must look like 1.2.3").

    Keyed by the JSON Schema keyword that refused it; a keyword without words of its own keeps
    the checker's message."""
    keyword = error.validator if isinstance(error.validator, str) else None
    wanted: Any = error.validator_value
    instance: Any = error.instance
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    if keyword == "type":
        return f"must be {_types(wanted)}"
    if keyword == "enum" and isinstance(wanted, list):
        return _one_of(wanted)
    if keyword == "const":
        return f"must be exactly {_choice(wanted)}"
    if keyword == "pattern" and isinstance(wanted, str):
        return _pattern(wanted)
    if keyword == "format" and isinstance(wanted, str):
        return f"must be {_FORMATS.get(wanted, f'a valid {clip(wanted, 40)}')}"
    if keyword == "required" and isinstance(wanted, list) and isinstance(instance, dict):
        missing = [name for name in wanted if name not in instance]
        return f"{_names(missing)} {'is' if len(missing) == 1 else 'are'} required"
    if keyword == "additionalProperties" and isinstance(instance, dict):
        return _not_allowed(instance, schema)
    if keyword == "dependentRequired" and isinstance(wanted, dict) and isinstance(instance, dict):
        return _dependent(wanted, instance)
    if keyword == "oneOf" and not error.context:
        return _FIXED["oneOf"]
    if keyword in ("anyOf", "oneOf"):
        return _FIXED["anyOf"]
    if keyword == "not" or keyword is None:  # `not`, or a `false` schema
        return _FIXED["not"]
    phrase = _bound(keyword, wanted) if keyword else None
    return phrase if phrase is not None else error.message


def _bound(keyword: str, wanted: Any) -> str | None:
    """The keywords that set a limit: on a number, a length, a count of items or keys."""
    if isinstance(wanted, bool) or not isinstance(wanted, int | float):
        if keyword == "uniqueItems":
            return _FIXED["uniqueItems"]
        return None
    if keyword == "minimum":
        return f"must be {at_least(wanted)}"
    if keyword == "maximum":
        return f"must be {at_most(wanted)}"
    if keyword == "exclusiveMinimum":
        return f"must be more than {number(wanted)}"
    if keyword == "exclusiveMaximum":
        return f"must be less than {number(wanted)}"
    if keyword == "multipleOf":
        return f"must be a multiple of {number(wanted)}"
    counted = {
        "minLength": ("least", "character"),
        "maxLength": ("most", "character"),
        "minItems": ("least", "item"),
        "maxItems": ("most", "item"),
        "minProperties": ("least", "key"),
        "maxProperties": ("most", "key"),
        "minContains": ("least", "matching item"),
        "maxContains": ("most", "matching item"),
    }
    if keyword not in counted:
        return None
    side, noun = counted[keyword]
    if keyword == "minLength" and wanted == 1:
        return "must not be empty"
    if side == "most" and wanted == 0:
        return "must be empty"
    verb = "must be" if noun == "character" else "must have"
    return f"{verb} at {side} {_count(int(wanted), noun)}"


def _types(wanted: Any) -> str:
    names = [wanted] if isinstance(wanted, str) else wanted
    if not isinstance(names, list):
        names = []
    words = [_TYPES.get(name, str(name)) for name in names]
    if "a whole number" in words and "a number" in words:
        words.remove("a whole number")
    return " or ".join(dict.fromkeys(words))


def _choice(value: Any) -> str:
    """An allowed value as a person reads it: text as is, anything else as JSON."""
    shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return clip(shown, CHOICE_CHARS)


def _one_of(values: Sequence[Any]) -> str:
    if len(values) == 1:
        return f"must be {_choice(values[0])}"
    listed = ", ".join(_choice(value) for value in values[:MAX_CHOICES])
    rest = len(values) - MAX_CHOICES
    return f"must be one of: {listed}" + (f" (or {rest} more)" if rest > 0 else "")


def _names(names: Sequence[Any]) -> str:
    quoted = [json.dumps(clip(str(name), NAME_CHARS), ensure_ascii=False) for name in names[:5]]
    rest = len(names) - len(quoted)
    return ", ".join(quoted) + (f" and {rest} more" if rest > 0 else "")


def _not_allowed(instance: Mapping[str, Any], schema: Mapping[str, Any]) -> str:
    properties = schema.get("properties")
    allowed = list(properties) if isinstance(properties, dict) else []
    if schema.get("patternProperties"):
        # which keys the patterns let through is the checker's business (RE2, not `re`)
        return "has a key that is not allowed here" + _allowed(allowed)
    extras = [name for name in instance if name not in allowed]
    verb = "is" if len(extras) == 1 else "are"
    return f"{_names(extras)} {verb} not allowed here" + _allowed(allowed)


def _allowed(names: Sequence[str]) -> str:
    return (
        f" (allowed: {', '.join(clip(name, NAME_CHARS) for name in names[:10])})" if names else ""
    )


def _dependent(wanted: Mapping[str, Any], instance: Mapping[str, Any]) -> str:
    for name, needs in wanted.items():
        if name in instance and isinstance(needs, list):
            missing = [need for need in needs if need not in instance]
            if missing:
                verb = "is" if len(missing) == 1 else "are"
                return f"{_names(missing)} {verb} required with {_names([name])}"
    return "is missing a key another key needs"


def _pattern(pattern: str) -> str:
    example = pattern_example(pattern)
    if example is not None:
        return f"must look like {example}"
    return f"must match the pattern `{clip(pattern, PATTERN_CHARS)}`"


def _count(n: int, noun: str) -> str:
    return f"{number(n)} {noun}{'' if n == 1 else 's'}"


# -- a checker's message, when only the message is left -------------------------------------------

#: jsonschema's messages (4.x), each with the value it quotes: the instance comes first
_SHAPES = {
    "type": r".* is not of type (?P<value>.+)",
    "pattern": r".* does not match (?P<value>'.*'|\".*\")",
    "enum": r".* is not one of (?P<value>\[.*\])",
    "const": r"(?P<value>.*) was expected",
    "required": r"(?P<value>'.*'|\".*\") is a required property",
    "exclusive": r".* is (?:less|greater) than or equal to the (?:minimum|maximum) of .+",
    "minimum": r".* is less than the minimum of (?P<value>.+)",
    "maximum": r".* is greater than the maximum of (?P<value>.+)",
    "multipleOf": r".* is not a multiple of (?P<value>.+)",
    "too long": r"(?P<value>.).* is too long",
    "too short": r"(?P<value>.).* is too short",
    "non-empty": r"(?P<value>.).* should be non-empty",
    "uniqueItems": r".* has non-unique elements",
    "extra": r"Additional properties are not allowed \((?P<value>.*) (?:was|were) unexpected\)",
    "format": r".* is not a (?P<value>'[^']*')",
    "empty": r".* is expected to be empty",
    "items": r"Expected at most (?P<value>\d+) items? but found .*",
    "dependency": r"(?P<value>'.*' is a dependency of '.*')",
    "anyOf": r".* is not valid under any of the given schemas",
    "oneOf": r".* is valid under each of .*",
    "not": r".* should not be valid under .*|False schema does not allow .*",
}
_MESSAGES_BY_KIND = {kind: re.compile(shape, re.DOTALL) for kind, shape in _SHAPES.items()}
_MESSAGES = [(shape, kind) for kind, shape in _MESSAGES_BY_KIND.items()]
_FIXED = {
    "uniqueItems": "must not list the same item twice",
    "empty": "must be empty",
    "anyOf": "does not fit any of the allowed forms",
    "oneOf": "fits more than one of the allowed forms; it must fit exactly one",
    "not": "is not allowed here",
}


def explain_message(message: str, schema: Mapping[str, Any] | None = None) -> str:
    """The phrase for a checker's `message` when the error itself is gone (a refusal the
    service sent back as text); `schema` is the argument's own schema, for the limits the
    message does not state. Anything not recognised is kept as it was."""
    own = schema or {}
    for shape, kind in _MESSAGES:
        found = shape.fullmatch(message)
        if found is None:
            continue
        value = found.groupdict().get("value")
        phrase = _from_message(kind, value, own)
        if phrase is not None:
            return phrase
    return message


def required_name(message: str) -> str | None:
    """The property a checker's "'x' is a required property" names, else None."""
    found = _MESSAGES_BY_KIND["required"].fullmatch(message)
    name = _literal(found["value"]) if found is not None else None
    return name if isinstance(name, str) else None


def _from_message(kind: str, value: str | None, schema: Mapping[str, Any]) -> str | None:
    literal = _literal(value) if value is not None else None
    if kind == "type" and isinstance(literal, str | tuple):
        return f"must be {_types(literal if isinstance(literal, str) else list(literal))}"
    if kind == "pattern" and isinstance(literal, str):
        return _pattern(literal)
    if kind == "enum" and isinstance(literal, list):
        return _one_of(literal)
    if kind == "const" and value is not None:
        return f"must be exactly {_choice(literal if literal is not None else value)}"
    if kind == "required" and isinstance(literal, str):
        return f"{_names([literal])} is required"
    if kind in ("minimum", "maximum", "multipleOf") and _is_number(literal):
        return _bound(kind, literal)
    if kind == "exclusive":
        for keyword in ("exclusiveMinimum", "exclusiveMaximum"):
            if _is_number(schema.get(keyword)):
                return _bound(keyword, schema[keyword])
        return None
    if kind in ("too long", "too short", "non-empty"):
        return _length(kind, value == "[", schema)
    if kind == "extra" and value is not None:
        extras = _literal(f"({value},)")
        if isinstance(extras, tuple):
            verb = "is" if len(extras) == 1 else "are"
            return f"{_names(extras)} {verb} not allowed here"
        return None
    if kind == "dependency" and value is not None:
        need, _, name = value.partition(" is a dependency of ")
        return f"{_names([_literal(need)])} is required with {_names([_literal(name)])}"
    if kind == "items" and value is not None:
        return f"must have at most {_count(int(value), 'item')}"
    if kind in _FIXED:
        return _FIXED[kind]
    if kind == "format" and isinstance(literal, str):
        return f"must be {_FORMATS.get(literal, f'a valid {clip(literal, 40)}')}"
    return None


#: a length message names no limit: the keyword that has it, and the words when none is found
_LENGTHS = {
    ("too long", False): ("maxLength", "is too long"),
    ("too long", True): ("maxItems", "has too many items"),
    ("too short", False): ("minLength", "is too short"),
    ("too short", True): ("minItems", "has too few items"),
    ("non-empty", False): ("minLength", "must not be empty"),
    ("non-empty", True): ("minItems", "must not be empty"),
}


def _length(kind: str, items: bool, schema: Mapping[str, Any]) -> str:
    keyword, words = _LENGTHS[kind, items]
    limit = schema.get(keyword)
    phrase = _bound(keyword, limit) if _is_number(limit) else None
    return phrase if phrase is not None else words


def _literal(text: str) -> Any:
    """A Python literal quoted in a message (a repr), or None."""
    if len(text) > 2000:
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, RecursionError, MemoryError):
        return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)

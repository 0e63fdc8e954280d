"""Argument schemas: an agent's `argsSchema`, checked once, then used for every check of its
arguments without ever stalling the bot, crashing it or making it fetch anything.

An agent is trusted with nothing, and its `argsSchema` is code the bot runs. `jsonschema` as is
would let one request hold the event loop for seconds (a backtracking `pattern`, `uniqueItems`
over thousands of objects, a `$ref` loop), fetch any URL or `file:` a `$ref` names, and answer
500 to refs that do not resolve. So:

* `compile_schema` refuses, once at submission, what cannot be checked safely: over 64 KiB of
  JSON, nested deeper than 32, not JSON Schema 2020-12, a `$ref` or `$dynamicRef` that is not a
  fragment (`#…`) resolving inside the document, a pattern RE2 cannot run (backreferences,
  lookaround). Nothing is ever retrieved: the registry's only retrieval refuses. The
  meta-schema check is by hand (jsonschema's takes 2.5 s on some 64 KiB schemas), and schemas
  over 4 KiB compile in the worker thread.
* Patterns run on RE2 (linear in the text, never backtracking), `uniqueItems` is linear (a
  hashable canonical form), and every keyword checks a deadline: a check that runs over its
  budget stops with `Uncheckable` instead of running on.
* `ArgsSchema.errors` checks on the event loop within a few milliseconds when the arguments are
  small, and otherwise (or when that budget runs out) once more in one worker thread with 100 ms:
  the loop is never held for longer than the loop budget plus one step (a regex search, a repr).

The limits on arguments themselves (depth, lone surrogates, NaN) are `check_plain_json`.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from functools import lru_cache
from itertools import islice
from typing import Any, cast
from urllib.parse import urljoin

import re2
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from jsonschema.validators import create
from pydantic_core import PydanticSerializationError, to_json
from referencing import Registry, Resource
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

__all__ = [
    "CHECK_BUDGET",
    "LOOP_BUDGET",
    "MAX_DEPTH",
    "MAX_SCHEMA_BYTES",
    "ArgsSchema",
    "SchemaRefused",
    "Uncheckable",
    "check_plain_json",
    "compile_schema",
    "unique",
]

#: the most an `argsSchema` may weigh, as compact UTF-8 JSON
MAX_SCHEMA_BYTES = 64 * 1024
#: how deep `args` (the object itself is level 1) and `argsSchema` may nest
MAX_DEPTH = 32
#: what one check may spend on the event loop before it moves to the worker thread (seconds)
LOOP_BUDGET = 0.003
#: what one check may spend in all; beyond it the schema is refused as too costly (seconds)
CHECK_BUDGET = 0.1
#: arguments up to about this many bytes of JSON are checked on the loop first; one step of a
#: check on larger ones (a regex search, the repr in an error message) could outlast the budget
SMALL_ARGS = 16 * 1024
#: the only `$schema` accepted, with or without its empty fragment
DIALECT = "https://json-schema.org/draft/2020-12/schema"
#: compiled schemas kept, by fingerprint: decisions and edits do not compile again
CACHE_SIZE = 64
#: schemas up to this many bytes of JSON compile where they are submitted, within a few ms;
#: larger ones (up to ~50 ms at 64 KiB) in the worker thread
INLINE_COMPILE = 4 * 1024


class SchemaRefused(ValueError):
    """An `argsSchema` the bot will not run; the message says why (pydantic reports it)."""


class Uncheckable(ValueError):
    """Arguments that could not be checked against a schema within `CHECK_BUDGET`."""


class _OverBudget(Exception):
    """The current check ran past its deadline (never leaves this module)."""


# -- plain JSON ------------------------------------------------------------------------------


def _too_deep(value: object, limit: int) -> bool:
    """True when `value` nests containers more than `limit` deep; looks no deeper than that.
    (JSON as parsed: plain dicts and lists, told apart by exact type, which is fastest.)"""
    level = [value] if isinstance(value, dict | list) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        below: list[Any] = []
        for node in level:
            children = node.values() if isinstance(node, dict) else node
            below += [child for child in children if type(child) in _CONTAINERS]
        level = below
    return False


_CONTAINERS = (dict, list)


#: compact JSON that refuses NaN and Infinity (made once: `json.dumps` makes one a call)
_PLAIN = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _encode(value: object) -> bytes:
    """Compact UTF-8 JSON; ValueError for NaN, Infinity or a lone surrogate.

    pydantic's encoder comes first: it is three to five times as fast as `json`'s, and either
    holds the interpreter throughout (3.5 ms for `json` on a call of 8,000 objects). It writes
    NaN and Infinity rather than refusing them and gives up where `json` still nests, so when
    it fails, or its text holds either word (in a string, most likely), `json` says which."""
    try:
        text = to_json(value)
    except PydanticSerializationError:
        pass
    else:
        if b"NaN" not in text and b"Infinity" not in text:
            return text
    try:
        return _PLAIN.encode(value).encode("utf-8")
    except RecursionError:
        raise ValueError(f"must not nest deeper than {MAX_DEPTH} levels") from None
    except UnicodeEncodeError:
        raise ValueError(
            "must be valid Unicode: it holds a lone surrogate (like \\ud800), which no "
            "store or Slack can keep"
        ) from None
    except ValueError:
        raise ValueError("must be plain JSON (no NaN or Infinity)") from None


def check_plain_json(value: object) -> None:
    """Raise ValueError unless `value` is JSON every store keeps and every check can walk:
    nested at most `MAX_DEPTH` deep, no NaN or Infinity, no lone surrogate in a key or string.

    Deeper values overflow serializers (pydantic gives up near 255 levels) and make a schema
    check recurse without bound; a lone surrogate is not Unicode (PostgreSQL refuses it)."""
    try:
        text = _encode(value)
    except ValueError:
        if _too_deep(value, MAX_DEPTH):  # the depth is what is said first
            raise ValueError(f"must not nest deeper than {MAX_DEPTH} levels") from None
        raise
    # Nesting opens a bracket a level: with few brackets in all, no walk is needed.
    if text.count(b"{") + text.count(b"[") > MAX_DEPTH and _too_deep(value, MAX_DEPTH):
        raise ValueError(f"must not nest deeper than {MAX_DEPTH} levels")


def _small(value: object, limit: int) -> bool:
    """True when `value` is at most about `limit` bytes of JSON; walks no further than that."""
    left = limit
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            left -= 2
            for key, child in node.items():
                left -= len(key) + 4
                if left < 0:
                    return False
                stack.append(child)
        elif isinstance(node, list):
            left -= 2
            for child in node:
                left -= 1
                if left < 0:
                    return False
                stack.append(child)
        else:
            left -= len(node) + 2 if isinstance(node, str) else 8
        if left < 0:
            return False
    return True


# -- the budget ------------------------------------------------------------------------------


class _Deadline(threading.local):
    """When the check running on this thread must stop, by `clock`."""

    at = math.inf
    #: wall time on the event loop (what the loop waits); the worker's own CPU time, so a
    #: busy machine slows a legitimate check without making it "too costly"
    clock: Callable[[], float] = time.monotonic
    collecting_since = 0.0


_deadline = _Deadline()


def _collector_time_is_not_the_checks(phase: str, info: dict[str, int]) -> None:
    """Move the deadline on by the time a garbage collection takes inside a check: a full
    collection of a large heap (150 ms for a million objects) is the process's cost, and
    would otherwise refuse a cheap check as "too costly" whenever one happens to land in it."""
    if _deadline.at == math.inf:
        return
    if phase == "start":
        _deadline.collecting_since = _deadline.clock()
    else:
        _deadline.at += _deadline.clock() - _deadline.collecting_since


gc.callbacks.append(_collector_time_is_not_the_checks)


def _tick() -> None:
    """Called by every keyword, at every descent and every loop step: stop when overdue."""
    if _deadline.clock() > _deadline.at:
        raise _OverBudget


# -- keywords: RE2 patterns, linear uniqueItems, loops that keep time ---------------------------

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.max_mem = 1 << 20  # per pattern: bounds the program and the DFA cache
_RE2_OPTIONS.log_errors = False


def _ecma_escapes(pattern: str) -> str:
    r"""ECMA-262's `\uXXXX` as RE2's `\x{XXXX}` (RE2 has no `\u`); the rest as written."""
    if "\\u" not in pattern:
        return pattern
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\" and i + 1 < len(pattern):
            hex_digits = pattern[i + 2 : i + 6]
            if (
                pattern[i + 1] == "u"
                and len(hex_digits) == 4
                and all(c in "0123456789abcdefABCDEF" for c in hex_digits)
            ):
                out.append("\\x{" + hex_digits + "}")
                i += 6
                continue
            out.append(pattern[i : i + 2])
            i += 2
            continue
        out.append(pattern[i])
        i += 1
    return "".join(out)


@lru_cache(maxsize=256)
def _regex(pattern: str) -> Any:
    """`pattern` compiled by RE2; re2.error when RE2 cannot run it."""
    return re2.compile(_ecma_escapes(pattern), _RE2_OPTIONS)


def _search(pattern: str, text: str) -> bool:
    try:
        return _regex(pattern).search(text) is not None
    except UnicodeEncodeError:  # a lone surrogate: refused before any check, never a match
        return False


_ARRAY, _OBJECT, _BOOLEAN = object(), object(), object()


def _canonical(value: Any) -> Any:
    """A hashable stand-in equal for JSON-equal values: 1 == 1.0, true != 1, key order moot."""
    if value is True or value is False:
        return (_BOOLEAN, value)
    if isinstance(value, dict):
        return (_OBJECT, frozenset((key, _canonical(item)) for key, item in value.items()))
    if isinstance(value, list):
        return (_ARRAY, tuple(_canonical(item) for item in value))
    return value  # str, int, float, None: Python's equality is JSON's


def unique(items: Iterable[Any]) -> bool:
    """True when no two items are equal as JSON values, in one pass (jsonschema's fallback for
    unhashable items compares every pair: 3,000 small objects took 10.8 s)."""
    seen: set[Any] = set()
    for item in items:
        _tick()
        key = _canonical(item)
        if key in seen:
            return False
        seen.add(key)
    return True


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _search(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, patterns: dict[str, Any], instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            _tick()
            if _search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(
    validator: Any, additional: Any, instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    properties = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    extras = []
    for key in instance:
        _tick()
        if key not in properties and not any(_search(p, key) for p in patterns):
            extras.append(key)
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        if patterns:
            verb = "does" if len(extras) == 1 else "do"
            joined = ", ".join(repr(each) for each in sorted(extras))
            listed = ", ".join(repr(each) for each in sorted(patterns))
            yield ValidationError(f"{joined} {verb} not match any of the regexes: {listed}")
        else:
            yield ValidationError(
                "Additional properties are not allowed ({} {} unexpected)".format(*_extras(extras))
            )


def _items(validator: Any, items: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "array"):
        return
    prefix = len(schema.get("prefixItems", []))
    extra = len(instance) - prefix
    if extra <= 0 or items is True:
        return
    if items is False:
        rest = instance[prefix:] if extra != 1 else instance[prefix]
        item = "items" if prefix != 1 else "item"
        yield ValidationError(f"Expected at most {prefix} {item} but found {extra} extra: {rest!r}")
        return
    for index in range(prefix, len(instance)):
        _tick()
        yield from validator.descend(instance[index], items, path=index)


def _property_names(
    validator: Any, names: Any, instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object") or names is True:
        return
    for key in instance:
        _tick()
        yield from validator.descend(key, names)


def _contains(
    validator: Any, contains: Any, instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "array"):
        return
    least = schema.get("minContains", 1)
    most = schema.get("maxContains", len(instance))
    matching = validator.evolve(schema=contains)
    matches = 0
    for each in instance:
        _tick()
        if matching.is_valid(each):
            matches += 1
            if matches > most:
                yield ValidationError(
                    f"Too many items match the given schema (expected at most {most})",
                    validator="maxContains",
                    validator_value=most,
                )
                return
    if matches < least:
        if not matches:
            yield ValidationError(f"{instance!r} does not contain items matching the given schema")
        else:
            yield ValidationError(
                "Too few items match the given schema (expected at least "
                f"{least} but only {matches} matched)",
                validator="minContains",
                validator_value=least,
            )


def _unique_items(
    validator: Any, wanted: Any, instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if wanted and validator.is_type(instance, "array") and not unique(instance):
        yield ValidationError(f"{instance!r} has non-unique elements")


def _multiple_of(
    validator: Any, factor: Any, instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "number"):
        return
    try:
        if isinstance(factor, float):
            quotient = instance / factor
            failed = int(quotient) != quotient
        else:
            failed = bool(instance % factor)
    except OverflowError:  # a huge integer against a float: exact fractions cannot overflow
        failed = (Fraction(instance) / Fraction(factor)).denominator != 1
    if failed:
        yield ValidationError(f"{instance!r} is not a multiple of {factor}")


def _extras(extras: list[Any]) -> tuple[str, str]:
    return ", ".join(repr(extra) for extra in extras), "was" if len(extras) == 1 else "were"


def _through_refs(
    validator: Any, schema: Mapping[str, Any], find: Callable[[Any, Any], set[Any]]
) -> set[Any]:
    """What `find` says of the schemas this one's `$ref` and `$dynamicRef` resolve to.

    Like jsonschema's own helpers (4.x), this reads the validator's private `_resolver`: the
    test comparing our verdicts with jsonschema's on random schemas catches a change there."""
    found: set[Any] = set()
    for keyword in ("$ref", "$dynamicRef"):
        ref = schema.get(keyword)
        if ref is not None:
            resolved = validator._resolver.lookup(ref)
            evolved = validator.evolve(schema=resolved.contents, _resolver=resolved.resolver)
            found |= find(evolved, resolved.contents)
    return found


def _evaluated_indexes(validator: Any, instance: list[Any], schema: Any) -> set[int]:
    """jsonschema's `find_evaluated_item_indexes_by_schema`, as a set and keeping time."""
    _tick()
    if isinstance(schema, bool):
        return set()
    if "items" in schema:
        return set(range(len(instance)))
    found = _through_refs(validator, schema, lambda v, s: _evaluated_indexes(v, instance, s))
    if "prefixItems" in schema:
        found.update(range(len(schema["prefixItems"])))
    if "if" in schema:
        if validator.evolve(schema=schema["if"]).is_valid(instance):
            found |= _evaluated_indexes(validator, instance, schema["if"])
            if "then" in schema:
                found |= _evaluated_indexes(validator, instance, schema["then"])
        elif "else" in schema:
            found |= _evaluated_indexes(validator, instance, schema["else"])
    for keyword in ("contains", "unevaluatedItems"):
        if keyword in schema:
            matching = validator.evolve(schema=schema[keyword])
            for index, item in enumerate(instance):
                _tick()
                if matching.is_valid(item):
                    found.add(index)
    for keyword in ("allOf", "oneOf", "anyOf"):
        for subschema in schema.get(keyword, ()):
            if next(validator.descend(instance, subschema), None) is None:
                found |= _evaluated_indexes(validator, instance, subschema)
    return found


def _evaluated_keys(validator: Any, instance: dict[str, Any], schema: Any) -> set[str]:
    """jsonschema's `find_evaluated_property_keys_by_schema`, with RE2, as a set, keeping time."""
    _tick()
    if isinstance(schema, bool):
        return set()
    found = _through_refs(validator, schema, lambda v, s: _evaluated_keys(v, instance, s))
    properties = schema.get("properties")
    if isinstance(properties, dict):
        found |= properties.keys() & instance.keys()
    for keyword in ("additionalProperties", "unevaluatedProperties"):
        subschema = schema.get(keyword)
        if subschema is None:
            continue
        for key, value in instance.items():
            _tick()
            if next(validator.descend(value, subschema), None) is None:
                found.add(key)
    patterns = list(schema.get("patternProperties", {}))
    for key in instance if patterns else ():
        _tick()
        if any(_search(pattern, key) for pattern in patterns):
            found.add(key)
    for name, subschema in schema.get("dependentSchemas", {}).items():
        if name in instance:
            found |= _evaluated_keys(validator, instance, subschema)
    for keyword in ("allOf", "oneOf", "anyOf"):
        for subschema in schema.get(keyword, ()):
            if next(validator.descend(instance, subschema), None) is None:
                found |= _evaluated_keys(validator, instance, subschema)
    if "if" in schema:
        if validator.evolve(schema=schema["if"]).is_valid(instance):
            found |= _evaluated_keys(validator, instance, schema["if"])
            if "then" in schema:
                found |= _evaluated_keys(validator, instance, schema["then"])
        elif "else" in schema:
            found |= _evaluated_keys(validator, instance, schema["else"])
    return found


def _unevaluated_items(
    validator: Any, unevaluated: Any, instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "array"):
        return
    evaluated = _evaluated_indexes(validator, instance, schema)
    extras = [item for index, item in enumerate(instance) if index not in evaluated]
    if extras:
        yield ValidationError(
            "Unevaluated items are not allowed ({} {} unexpected)".format(*_extras(extras))
        )


def _unevaluated_properties(
    validator: Any, unevaluated: Any, instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    evaluated = _evaluated_keys(validator, instance, schema)
    refused = []
    for key in instance:
        _tick()
        if key not in evaluated:
            errors = validator.descend(instance[key], unevaluated, path=key, schema_path=key)
            if next(errors, None) is not None:
                refused.append(key)
    if not refused:
        return
    if unevaluated is False:
        message = "Unevaluated properties are not allowed (%s %s unexpected)"
        yield ValidationError(message % _extras(sorted(refused, key=str)))
    else:
        message = (
            "Unevaluated properties are not valid under the given schema "
            "(%s %s unevaluated and invalid)"
        )
        yield ValidationError(message % _extras(refused))


#: a keyword's check: (validator, the keyword's value, the instance, the schema) -> errors
Keyword = Callable[[Any, Any, Any, Any], Iterator[ValidationError] | None]
Timed = Callable[[Any, Any, Any, Any], Iterator[ValidationError]]


def _timed(keyword: Keyword) -> Timed:
    """`keyword` checking the deadline when it starts and at every error it yields."""

    def timed(validator: Any, value: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
        _tick()
        for error in keyword(validator, value, instance, schema) or ():
            _tick()
            yield error

    return timed


def _applicable(schema: Any) -> Iterable[tuple[str, Any]]:
    """Every descent into a schema passes here: a deadline check even for `{}`."""
    _tick()
    return cast(Iterable[tuple[str, Any]], schema.items())


_OURS: dict[str, Keyword] = {
    "pattern": _pattern,
    "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties,
    "items": _items,
    "propertyNames": _property_names,
    "contains": _contains,
    "uniqueItems": _unique_items,
    "multipleOf": _multiple_of,
    "unevaluatedItems": _unevaluated_items,
    "unevaluatedProperties": _unevaluated_properties,
}

_STOCK: dict[str, Keyword] = Draft202012Validator.VALIDATORS

# `create`, not `extend`: only `create` takes `applicable_validators`, the hook every descent
# passes through. Format checking stays off (the validator gets no format checker).
_Validator = create(
    meta_schema=Draft202012Validator.META_SCHEMA,
    validators={name: _timed(_OURS.get(name, keyword)) for name, keyword in _STOCK.items()},
    type_checker=Draft202012Validator.TYPE_CHECKER,
    format_checker=Draft202012Validator.FORMAT_CHECKER,
    id_of=cast(Any, DRAFT202012.id_of),
    applicable_validators=_applicable,
)


# -- compiling: the shape of 2020-12, refs inside the document, RE2 patterns ------------------

_SCHEMA_IN_VALUE = frozenset(
    {
        "additionalProperties",
        "contains",
        "contentSchema",
        "else",
        "if",
        "items",
        "not",
        "propertyNames",
        "then",
        "unevaluatedItems",
        "unevaluatedProperties",
    }
)
_SCHEMAS_IN_ARRAY = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
_SCHEMAS_IN_OBJECT = frozenset(
    {"$defs", "definitions", "dependentSchemas", "patternProperties", "properties"}
)
_TYPES = frozenset({"array", "boolean", "integer", "null", "number", "object", "string"})
_ANCHOR = re.compile(r"[A-Za-z_][-A-Za-z0-9._]*")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_count(value: object) -> bool:
    return (
        _is_number(value)
        and (isinstance(value, int) or cast(float, value).is_integer())
        and cast(float, value) >= 0
    )


def _is_strings(value: object) -> bool:
    return (
        isinstance(value, list)
        and all(isinstance(item, str) for item in value)
        and len(set(value)) == len(value)
    )


def _is_types(value: object) -> bool:
    if isinstance(value, str):
        return value in _TYPES
    return bool(value) and _is_strings(value) and set(cast(list[str], value)) <= _TYPES


def _is_anchor(value: object) -> bool:
    return isinstance(value, str) and _ANCHOR.fullmatch(value) is not None


#: every keyword of the 2020-12 meta-schemas whose value is not a schema: what it must be
_SHAPES: dict[str, tuple[Callable[[object], bool], str]] = {
    "$id": (lambda v: isinstance(v, str) and "#" not in v[:-1], "a URI without a fragment"),
    "$schema": (lambda v: isinstance(v, str), "a string"),
    "$ref": (lambda v: isinstance(v, str), "a string"),
    "$dynamicRef": (lambda v: isinstance(v, str), "a string"),
    "$anchor": (_is_anchor, "a name (letters, digits, - _ .)"),
    "$dynamicAnchor": (_is_anchor, "a name (letters, digits, - _ .)"),
    "$recursiveAnchor": (_is_anchor, "a name (letters, digits, - _ .)"),
    "$recursiveRef": (lambda v: isinstance(v, str), "a string"),
    "$vocabulary": (
        lambda v: isinstance(v, dict) and all(isinstance(b, bool) for b in v.values()),
        "an object of booleans",
    ),
    "$comment": (lambda v: isinstance(v, str), "a string"),
    "type": (_is_types, "a type name or a non-empty array of distinct type names"),
    "enum": (lambda v: isinstance(v, list), "an array"),
    "multipleOf": (lambda v: _is_number(v) and cast(float, v) > 0, "a number above 0"),
    "maximum": (_is_number, "a number"),
    "exclusiveMaximum": (_is_number, "a number"),
    "minimum": (_is_number, "a number"),
    "exclusiveMinimum": (_is_number, "a number"),
    "maxLength": (_is_count, "a non-negative integer"),
    "minLength": (_is_count, "a non-negative integer"),
    "pattern": (lambda v: isinstance(v, str), "a string"),
    "maxItems": (_is_count, "a non-negative integer"),
    "minItems": (_is_count, "a non-negative integer"),
    "uniqueItems": (lambda v: isinstance(v, bool), "a boolean"),
    "maxContains": (_is_count, "a non-negative integer"),
    "minContains": (_is_count, "a non-negative integer"),
    "maxProperties": (_is_count, "a non-negative integer"),
    "minProperties": (_is_count, "a non-negative integer"),
    "required": (_is_strings, "an array of distinct strings"),
    "dependentRequired": (
        lambda v: isinstance(v, dict) and all(_is_strings(s) for s in v.values()),
        "an object of arrays of distinct strings",
    ),
    "title": (lambda v: isinstance(v, str), "a string"),
    "description": (lambda v: isinstance(v, str), "a string"),
    "deprecated": (lambda v: isinstance(v, bool), "a boolean"),
    "readOnly": (lambda v: isinstance(v, bool), "a boolean"),
    "writeOnly": (lambda v: isinstance(v, bool), "a boolean"),
    "examples": (lambda v: isinstance(v, list), "an array"),
    "format": (lambda v: isinstance(v, str), "a string"),
    "contentEncoding": (lambda v: isinstance(v, str), "a string"),
    "contentMediaType": (lambda v: isinstance(v, str), "a string"),
}


def _pointer(parts: tuple[str, ...]) -> str:
    escaped = (part.replace("~", "~0").replace("/", "~1") for part in parts)
    return "/" + "/".join(escaped) if parts else "the root"


class _Walk:
    """One pass over every schema in a document (where 2020-12 says schemas are): checks each
    keyword's value as the meta-schema would, in about a microsecond where jsonschema's
    meta-schema check spends ~0.1 ms a subschema (2.5 s on 64 KiB), and collects what needs a
    second look: refs with the base URI they resolve against, patterns, anchors."""

    def __init__(self) -> None:
        self.schemas: set[int] = set()
        self.refs: list[tuple[tuple[str, ...], str, str, str]] = []
        self.patterns: list[tuple[tuple[str, ...], str]] = []
        self.crawl = False

    def schema(self, node: object, at: tuple[str, ...], base: str) -> None:
        if isinstance(node, bool):
            return
        if not isinstance(node, dict):
            raise _invalid(at, "must be a schema (an object or a boolean)")
        self.schemas.add(id(node))
        embedded = node.get("$id")
        if at and isinstance(embedded, str):
            self.crawl = True
            # as referencing's `Resolver.in_subresource` and `Resource.id`
            base = urljoin(base, embedded.rstrip("#"))
        for key, value in node.items():
            here = (*at, key)
            if key in _SCHEMA_IN_VALUE:
                self.schema(value, here, base)
            elif key in _SCHEMAS_IN_ARRAY:
                if not isinstance(value, list) or not value:
                    raise _invalid(here, "must be a non-empty array of schemas")
                for index, item in enumerate(value):
                    self.schema(item, (*here, str(index)), base)
            elif key in _SCHEMAS_IN_OBJECT:
                if not isinstance(value, dict):
                    raise _invalid(here, "must be an object of schemas")
                for name, item in value.items():
                    if key == "patternProperties":
                        self.patterns.append((here, name))
                    self.schema(item, (*here, name), base)
            elif key == "dependencies":
                if not isinstance(value, dict):
                    raise _invalid(here, "must be an object")
                for name, item in value.items():
                    if not _is_strings(item):
                        self.schema(item, (*here, name), base)
            elif key in _SHAPES:
                check, wanted = _SHAPES[key]
                if not check(value):
                    raise _invalid(here, f"must be {wanted}")
                self._note(key, value, here, base)

    def _note(self, key: str, value: Any, here: tuple[str, ...], base: str) -> None:
        if key in ("$ref", "$dynamicRef"):
            self.refs.append((here, key, value, base))
        elif key == "pattern":
            self.patterns.append((here, value))
        elif key in ("$anchor", "$dynamicAnchor"):
            self.crawl = True
        elif key == "$schema":
            raise SchemaRefused(
                f"$schema is only allowed at the root (found at {_pointer(here[:-1])})"
            )


def _invalid(at: tuple[str, ...], problem: str) -> SchemaRefused:
    return SchemaRefused(f"not a valid JSON Schema: {_pointer(at)} {problem}")


def _no_retrieval(uri: str) -> Resource:
    """The registry's retrieval: nothing outside the document is ever fetched or read."""
    raise LookupError(f"{uri} is never fetched")


class ArgsSchema:
    """A compiled `argsSchema`: checked once, then used for every check of arguments.

    One over `INLINE_COMPILE` bytes compiles in the worker thread at its first check (the
    submission's), where its refusal is raised: compiling the largest takes tens of ms."""

    __slots__ = ("_document", "_refused", "_validator", "fingerprint")

    def __init__(self, document: bytes, fingerprint: str) -> None:
        self._document = document
        self._validator: Any = None
        self._refused: SchemaRefused | None = None
        self.fingerprint = fingerprint

    def compile(self) -> None:
        """Compile now (once); raises `SchemaRefused` (again, once refused)."""
        if self._refused is not None:
            raise self._refused
        if self._validator is None:
            try:
                self._validator = _compile(json.loads(self._document))
            except SchemaRefused as exc:
                self._refused = exc
                raise

    def errors_now(self, args: Any, limit: int = 1) -> list[ValidationError] | None:
        """Up to `limit` errors of `args` (plain JSON), checked right here within
        `LOOP_BUDGET`; None when that is not enough (the schema is not compiled yet, the
        arguments are large, or the check ran long): then `await errors(...)` checks them in
        the worker thread. Raises `SchemaRefused` for a schema known to be refused.

        Pure and synchronous, for callers on the event loop that must not wait (the cards)."""
        if self._refused is not None:
            raise self._refused
        if self._validator is None or not _small(args, SMALL_ARGS):
            return None
        try:
            return _check(self._validator, args, limit, LOOP_BUDGET)
        except (_OverBudget, RecursionError):
            return None

    async def errors(self, args: Any, limit: int = 1) -> list[ValidationError]:
        """Up to `limit` errors of `args` (plain JSON): on the loop when quick, else in the
        worker thread within `CHECK_BUDGET`. Raises `Uncheckable` past it, `SchemaRefused`
        when compiling refuses the schema.

        One worker for every check: the rare check that needs it runs while the loop keeps
        serving, and a flood of them queues instead of taking the GIL from the loop."""
        found = self.errors_now(args, limit)
        if found is not None:
            return found
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(_worker(), self._errors_in_worker, args, limit)
        except _OverBudget:
            raise Uncheckable(
                f"argsSchema is too costly to check (over {CHECK_BUDGET * 1000:.0f} ms)"
            ) from None
        except RecursionError:
            raise Uncheckable(
                "argsSchema is too deep to check against these arguments (a $ref loop?)"
            ) from None

    def _errors_in_worker(self, args: Any, limit: int) -> list[ValidationError]:
        self.compile()
        return _check(self._validator, args, limit, CHECK_BUDGET, clock=time.thread_time)


def _check(
    validator: Any,
    args: Any,
    limit: int,
    budget: float,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> list[ValidationError]:
    _deadline.clock = clock
    _deadline.at = clock() + budget
    try:
        return list(islice(validator.iter_errors(args), limit))
    except Unresolvable as exc:  # compile_schema resolved every ref: should not happen
        raise Uncheckable(f"argsSchema has a $ref that does not resolve: {exc}") from None
    finally:
        _deadline.at = math.inf


_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _worker() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="args-schema")
        return _executor


_compiled: OrderedDict[str, ArgsSchema] = OrderedDict()
_compiled_lock = threading.Lock()


def compile_schema(schema: dict[str, Any]) -> ArgsSchema:
    """The `argsSchema` `schema`, ready to check arguments; `SchemaRefused` says why not.

    Refused: over `MAX_SCHEMA_BYTES` of JSON or `MAX_DEPTH` deep, not valid JSON Schema 2020-12
    (another `$schema`, or one below the root), not describing an object, a `$ref` or
    `$dynamicRef` that is not a fragment resolving to a schema in this document, a pattern RE2
    cannot compile. The result is cached by the schema's fingerprint.

    Up to `INLINE_COMPILE` bytes it compiles here (at most a few ms); a larger one has only
    its size checked here and compiles in the worker at its first check (`ArgsSchema`)."""
    try:
        encoded = _encode(schema)
    except ValueError as exc:
        raise SchemaRefused(str(exc)) from None
    if len(encoded) > MAX_SCHEMA_BYTES:
        raise SchemaRefused(
            f"must be at most {MAX_SCHEMA_BYTES // 1024} KiB of JSON (it is {len(encoded)} bytes)"
        )
    fingerprint = hashlib.sha256(encoded).hexdigest()
    with _compiled_lock:
        found = _compiled.get(fingerprint)
        if found is not None:
            _compiled.move_to_end(fingerprint)
    if found is None:
        found = ArgsSchema(encoded, fingerprint)
        with _compiled_lock:
            _compiled[fingerprint] = found
            while len(_compiled) > CACHE_SIZE:
                _compiled.popitem(last=False)
    if len(encoded) <= INLINE_COMPILE:
        found.compile()
    return found


def _compile(schema: dict[str, Any]) -> Any:
    if _too_deep(schema, MAX_DEPTH):
        raise SchemaRefused(f"must not nest deeper than {MAX_DEPTH} levels")
    dialect = schema.get("$schema", DIALECT)
    if not isinstance(dialect, str) or dialect.rstrip("#") != DIALECT:
        raise SchemaRefused(f"must be JSON Schema 2020-12 ($schema {DIALECT!r}, or none)")
    # Without the root's $schema: with it, jsonschema would pick its stock validator class
    # whenever a `$ref` lands on the root.
    document = {key: value for key, value in schema.items() if key != "$schema"}
    root_id = document.get("$id")
    walk = _Walk()
    walk.schema(document, (), root_id.rstrip("#") if isinstance(root_id, str) else "")
    if document.get("type", "object") != "object":
        raise SchemaRefused('must describe an object ("type": "object")')
    resource = DRAFT202012.create_resource(document)
    root = resource.id() or ""
    refusing: Registry[Any] = Registry(retrieve=_no_retrieval)  # type: ignore[call-arg]
    registry = refusing.with_resource(root, resource)
    if walk.crawl:  # anchors and embedded $ids are found by crawling: once, here
        registry = registry.crawl()
    for at, keyword, ref, base in walk.refs:
        where = _pointer(at[:-1])
        if not ref.startswith("#"):
            raise SchemaRefused(
                f'{keyword} at {where} must point inside this schema (start with "#"): '
                "remote and file references are never fetched"
            )
        try:
            target = registry.resolver(base_uri=base).lookup(ref)
        except Unresolvable:
            raise SchemaRefused(
                f"{keyword} {ref[:100]!r} at {where} does not resolve inside this schema"
            ) from None
        if not isinstance(target.contents, bool) and id(target.contents) not in walk.schemas:
            raise SchemaRefused(f"{keyword} {ref[:100]!r} at {where} does not point to a schema")
    for at, pattern in walk.patterns:
        try:
            _regex(pattern)
        except re2.error as exc:
            reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
            raise SchemaRefused(
                f"the pattern {pattern[:100]!r} at {_pointer(at)} cannot be checked in linear "
                f"time ({reason}); RE2 syntax has no backreferences or lookaround"
            ) from None
    # The resolver over the crawled registry, passed as is: jsonschema would otherwise add the
    # root again, uncrawled, and crawl the whole document at every anchor it misses.
    resolver = registry.resolver(base_uri=root)
    validator_class = cast(Any, _Validator)
    return validator_class(document, registry=registry, _resolver=resolver)

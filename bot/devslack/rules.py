"""The vocabulary of Block Kit checks: small rules, each checking one field of an object.

A schema is a tuple of rules; ``run`` applies one to an object found at a path and yields
readable problems (``blocks[3].text.text: 3012 > 3000``). ``limits.py`` holds the tables.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "AnyOf",
    "Check",
    "Choice",
    "Element",
    "Elements",
    "Flag",
    "Int",
    "Items",
    "Nested",
    "NestedList",
    "Problems",
    "Rule",
    "Schema",
    "Str",
    "Text",
    "TextList",
    "run",
    "text_object",
    "typed",
]

Problems = Iterator[str]


class Rule(Protocol):
    """Checks one aspect of an object found at ``path``."""

    def check(self, obj: Mapping[str, Any], path: str) -> Problems: ...


Schema = tuple[Rule, ...]


def run(schema: Schema, obj: Mapping[str, Any], path: str) -> Problems:
    for rule in schema:
        yield from rule.check(obj, path)


def typed(
    value: object, family: Mapping[str, Schema], allowed: frozenset[str], path: str, what: str
) -> Problems:
    """Dispatch on ``type``: unknown or misplaced types are problems, known ones are checked."""
    if not isinstance(value, Mapping):
        yield f"{path}: must be an object"
        return
    kind = value.get("type")
    if not isinstance(kind, str):
        yield f"{path}.type: required"
        return
    if kind not in family:
        yield f"{path}: unknown {what} type {kind!r}"
        return
    if kind not in allowed:
        yield f"{path}: {what} type {kind!r} is not allowed here"
        return
    yield from run(family[kind], value, path)


def text_object(value: object, path: str, max_len: int | None, plain_only: bool) -> Problems:
    if not isinstance(value, Mapping):
        yield f"{path}: must be a text object"
        return
    kinds = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if value.get("type") not in kinds:
        yield f"{path}.type: must be {' or '.join(kinds)}, not {value.get('type')!r}"
    text = value.get("text")
    if text is None:
        yield f"{path}.text: required"
    elif not isinstance(text, str):
        yield f"{path}.text: must be a string"
    elif not text:
        yield f"{path}.text: must not be empty"
    elif max_len is not None and len(text) > max_len:
        yield f"{path}.text: {len(text)} > {max_len}"


@dataclass(frozen=True)
class Str:
    """A string field, at most ``max_len`` characters."""

    name: str
    max_len: int | None = None
    required: bool = False

    def check(self, obj: Mapping[str, Any], path: str) -> Problems:
        value = obj.get(self.name)
        where = f"{path}.{self.name}"
        if value is None:
            if self.required:
                yield f"{where}: required"
        elif not isinstance(value, str):
            yield f"{where}: must be a string"
        elif self.max_len is not None and len(value) > self.max_len:
            yield f"{where}: {len(value)} > {self.max_len}"


@dataclass(frozen=True)
class Text:
    """A text object (``plain_text`` or ``mrkdwn``) whose ``text`` is at most ``max_len``."""

    name: str
    max_len: int | None
    plain_only: bool = False
    required: bool = False

    def check(self, obj: Mapping[str, Any], path: str) -> Problems:
        value = obj.get(self.name)
        if value is None:
            if self.required:
                yield f"{path}.{self.name}: required"
            return
        yield from text_object(value, f"{path}.{self.name}", self.max_len, self.plain_only)


@dataclass(frozen=True)
class TextList:
    """A list of text objects (section ``fields``)."""

    name: str
    max_items: int
    max_len: int

    def check(self, obj: Mapping[str, Any], path: str) -> Problems:
        items = obj.get(self.name)
        where = f"{path}.{self.name}"
        if items is None:
            return
        if not isinstance(items, list):
            yield f"{where}: must be a list"
            return
        if len(items) > self.max_items:
            yield f"{where}: {len(items)} items > {self.max_items}"
        for i, item in enumerate(items):
            yield from text_object(item, f"{where}[{i}]", self.max_len, plain_only=False)


@dataclass(frozen=True)
class Flag:
    """A boolean field."""

    name: str
    required: bool = False

    def check(self, obj: Mapping[str, Any], path: str) -> Problems:
        value = obj.get(self.name)
        if value is None:
            if self.required:
                yield f"{path}.{self.name}: required"
        elif not isinstance(value, bool):
            yield f"{path}.{self.name}: must be a boolean"


@dataclass(frozen=True)
class Int:
    """An integer field within ``[low, high]``."""

    name: str
    low: int
    high: int

    def check(self, obj: Mapping[str, Any], path: str) -> Problems:
        value = obj.get(self.name)
        where = f"{path}.{self.name}"
        if value is None:
            return
        if not isinstance(value, int) or isinstance(value, bool):
            yield f"{where}: must be an integer"
        elif value > self.high:
            yield f"{where}: {value} > {self.high}"
        elif value < self.low:
            yield f"{where}: {value} < {self.low}"


@dataclass(frozen=True)
class Choice:
    """A string field limited to a few values (button ``style``)."""

    name: str
    choices: tuple[str, ...]

    def check(self, obj: Mapping[str, Any], path: str) -> Problems:
        value = obj.get(self.name)
        if value is not None and value not in self.choices:
            yield f"{path}.{self.name}: must be one of {', '.join(self.choices)}, not {value!r}"


@dataclass(frozen=True)
class AnyOf:
    """At least one of these fields is present (a section needs text or fields)."""

    names: tuple[str, ...]

    def check(self, obj: Mapping[str, Any], path: str) -> Problems:
        if all(obj.get(name) is None for name in self.names):
            yield f"{path}: needs {' or '.join(self.names)}"


@dataclass(frozen=True)
class Items:
    """A non-empty list field, at most ``max_items`` long, items left unchecked."""

    name: str
    max_items: int | None = None
    required: bool = False

    def check(self, obj: Mapping[str, Any], path: str) -> Problems:
        items = obj.get(self.name)
        where = f"{path}.{self.name}"
        if items is None:
            if self.required:
                yield f"{where}: required"
        elif not isinstance(items, list):
            yield f"{where}: must be a list"
        elif not items and self.required:
            yield f"{where}: must not be empty"
        elif self.max_items is not None and len(items) > self.max_items:
            yield f"{where}: {len(items)} items > {self.max_items}"


@dataclass(frozen=True)
class Element:
    """One nested element, looked up in ``family``, whose type must be in ``allowed``."""

    name: str
    family: Mapping[str, Schema]
    allowed: frozenset[str]
    required: bool = False

    def check(self, obj: Mapping[str, Any], path: str) -> Problems:
        value = obj.get(self.name)
        if value is None:
            if self.required:
                yield f"{path}.{self.name}: required"
            return
        yield from typed(value, self.family, self.allowed, f"{path}.{self.name}", "element")


@dataclass(frozen=True)
class Elements:
    """A list of elements (context, actions): 1 to ``max_items``, each type in ``allowed``."""

    name: str
    family: Mapping[str, Schema]
    allowed: frozenset[str]
    max_items: int

    def check(self, obj: Mapping[str, Any], path: str) -> Problems:
        yield from Items(self.name, self.max_items, required=True).check(obj, path)
        items = obj.get(self.name)
        if isinstance(items, list):
            for i, item in enumerate(items):
                where = f"{path}.{self.name}[{i}]"
                yield from typed(item, self.family, self.allowed, where, "element")


@dataclass(frozen=True)
class Nested:
    """A nested composition object checked against its own schema (confirm dialog, option)."""

    name: str
    schema: Schema
    required: bool = False

    def check(self, obj: Mapping[str, Any], path: str) -> Problems:
        value = obj.get(self.name)
        where = f"{path}.{self.name}"
        if value is None:
            if self.required:
                yield f"{where}: required"
        elif not isinstance(value, Mapping):
            yield f"{where}: must be an object"
        else:
            yield from run(self.schema, value, where)


@dataclass(frozen=True)
class NestedList:
    """A list of composition objects (options), at most ``max_items``."""

    name: str
    schema: Schema
    max_items: int
    required: bool = False

    def check(self, obj: Mapping[str, Any], path: str) -> Problems:
        yield from Items(self.name, self.max_items, self.required).check(obj, path)
        items = obj.get(self.name)
        if isinstance(items, list):
            for i, item in enumerate(items):
                where = f"{path}.{self.name}[{i}]"
                if isinstance(item, Mapping):
                    yield from run(self.schema, item, where)
                else:
                    yield f"{where}: must be an object"


@dataclass(frozen=True)
class Check:
    """A rule spanning several fields, written as a function."""

    fn: Callable[[Mapping[str, Any], str], Problems]

    def check(self, obj: Mapping[str, Any], path: str) -> Problems:
        yield from self.fn(obj, path)

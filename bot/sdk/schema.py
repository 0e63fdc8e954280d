"""The `argsSchema` a gate sends: what its tool can run, so no decision approves what it cannot.

`approvedArgs` are the complete arguments to run with, and the bot checks them against the
request's `argsSchema` before it stores a decision (422 on the API, an error in Slack's edit
modal). A gate that sends a schema of its tool — from its Python signature, or the JSON schema
its framework shows the model — is never told "approved" for arguments the tool cannot take:
a required one left out, or one it does not know.

    signature_schema(signature, skip)   required parameters required, others optional, and
                                        no unknown names unless the function takes **kwargs
    tool_schema(schema, args)           a framework's schema, closed to unknown names; only
                                        its shape (names, required) when the call's own
                                        arguments break its types; None when they break that
    pinned_schema(args)                 exactly these arguments: for frameworks that can only
                                        run a call as proposed

A schema the bot would refuse (over 64 KiB, nested too deep, a `$ref` outside it) or that the
call's own arguments break is never sent: asking must not fail where the tool would not.
"""

from __future__ import annotations

import inspect
from collections.abc import Collection, Mapping
from typing import Any

from bot.schemas import DIALECT, compile_schema

__all__ = ["pinned_schema", "required_names", "signature_schema", "tool_schema"]

#: keywords that say which names an object may have besides `properties`; a schema using one
#: is left as it is (closing it with `additionalProperties: false` could refuse its own names)
_OPEN_KEYWORDS = (
    "additionalProperties",
    "patternProperties",
    "unevaluatedProperties",
    "propertyNames",
    "allOf",
    "anyOf",
    "oneOf",
    "$ref",
    "$dynamicRef",
    "if",
    "dependentSchemas",
)
_NAMED = (
    inspect.Parameter.POSITIONAL_ONLY,
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
    inspect.Parameter.KEYWORD_ONLY,
)


def signature_schema(signature: inspect.Signature, skip: Collection[str] = ()) -> dict[str, Any]:
    """The arguments a function with `signature` takes, as the gate sends them: one property
    per parameter but those in `skip` (`*args` as a list), the ones without a default
    required, and no other names unless it takes `**kwargs` (never those in `skip`).

    Only names, not types: Python does not enforce annotations, so a call the function runs
    must not be refused for one."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    var_keyword = False
    for name, param in signature.parameters.items():
        if name in skip:
            continue
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            var_keyword = True
        elif param.kind is inspect.Parameter.VAR_POSITIONAL:
            properties[name] = {"type": "array"}
        else:
            properties[name] = {}
            if param.default is inspect.Parameter.empty:
                required.append(name)
    schema: dict[str, Any] = {"type": "object", "properties": properties, "required": required}
    if not var_keyword:
        schema["additionalProperties"] = False
    elif skip:
        schema["propertyNames"] = {"not": {"enum": sorted(skip)}}
    return schema


def required_names(signature: inspect.Signature, skip: Collection[str] = ()) -> list[str]:
    """The parameters a call must give, but those in `skip`."""
    return [
        name
        for name, param in signature.parameters.items()
        if name not in skip and param.kind in _NAMED and param.default is inspect.Parameter.empty
    ]


def tool_schema(schema: Any, args: Mapping[str, Any]) -> dict[str, Any] | None:
    """`schema` (a framework's JSON schema of a tool's arguments) made fit to send with `args`.

    Closed to unknown names (`additionalProperties: false`) unless it says otherwise: a
    framework drops an argument its tool does not take, so approving one would be a lie.
    When `args`, the call as the model made it, break its types (a framework may coerce
    `"5"` to 5; JSON Schema does not), only its shape is sent: the names and which are
    required. None when `args` break that too, or `schema` is no object schema."""
    if not isinstance(schema, Mapping) or schema.get("type", "object") != "object":
        return None
    closed = dict(schema)
    dialect = closed.get("$schema")
    if dialect is not None and (not isinstance(dialect, str) or dialect.rstrip("#") != DIALECT):
        del closed["$schema"]  # an older draft: its keywords for arguments mean the same
    closed["type"] = "object"
    properties = closed.get("properties")
    if isinstance(properties, Mapping) and not any(key in closed for key in _OPEN_KEYWORDS):
        closed["additionalProperties"] = False
    if _accepts(closed, args):
        return closed
    shape = _shape(closed)
    return shape if shape is not None and _fits_shape(shape, args) else None


def pinned_schema(args: Mapping[str, Any]) -> dict[str, Any] | None:
    """A schema only `args` meet, or None when it would be too large for the bot to take."""
    schema = {
        "type": "object",
        "properties": {name: {"const": value} for name, value in args.items()},
        "required": list(args),
        "additionalProperties": False,
    }
    return schema if _accepts(schema, args) else None


def _shape(schema: Mapping[str, Any]) -> dict[str, Any] | None:
    """The names of `schema`'s properties and which are required, without their types."""
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return None
    required = schema.get("required")
    names = (
        [name for name in required if isinstance(name, str)] if isinstance(required, list) else []
    )
    shape: dict[str, Any] = {
        "type": "object",
        "properties": {str(name): {} for name in properties},
        "required": names,
    }
    if schema.get("additionalProperties") is False:
        shape["additionalProperties"] = False
    return shape


def _fits_shape(shape: Mapping[str, Any], args: Mapping[str, Any]) -> bool:
    if not set(shape["required"]) <= args.keys():
        return False
    return (
        shape.get("additionalProperties") is not False or args.keys() <= shape["properties"].keys()
    )


def _accepts(schema: dict[str, Any], args: Mapping[str, Any]) -> bool:
    """True when the bot would take `schema` and `args` meet it (checked here, as it checks)."""
    try:
        compiled = compile_schema(schema)
        compiled.compile()
        errors = compiled.errors_now(dict(args))
    except (ValueError, RecursionError):  # SchemaRefused: the bot would refuse it too
        return False
    return errors == []  # None: too large to check quickly here, so not sent

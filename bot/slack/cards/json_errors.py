"""Why text typed into a JSON input does not parse, said the way a person would ("a key needs
double quotes (line 1, column 2)") rather than the parser's "Expecting property name enclosed
in double quotes: line 1 column 2 (char 1)"."""

from __future__ import annotations

import json
import re

__all__ = ["explain_json"]

_WORDS = {"True", "False", "None", "TRUE", "FALSE", "NULL", "Null", "nil", "undefined"}


def explain_json(exc: json.JSONDecodeError) -> str:
    """Why typed text is not JSON, and where: "not valid JSON: a key needs double quotes
    (line 1, column 2)"."""
    return f"not valid JSON: {_json_reason(exc)} (line {exc.lineno}, column {exc.colno})"


def _json_reason(exc: json.JSONDecodeError) -> str:
    message, doc, at = exc.msg, exc.doc, exc.pos
    here = doc[at] if at < len(doc) else ""
    if message.startswith("Expecting property name"):
        if here == "}":
            return "there is a comma too many before }"
        if here == "'":
            return "a key needs double quotes, not single quotes"
        return "a key needs double quotes"
    if message.startswith("Expecting value"):
        return _missing_value(doc, at, here)
    if message.startswith("Expecting ':'"):
        return "a key needs a colon (:) after it"
    if message.startswith("Expecting ','"):
        return "it ends too early: a } or ] is missing" if not here else "a comma is missing"
    if message.startswith("Unterminated string"):
        return "a text value has no closing double quote"
    if message.startswith("Invalid control character"):
        return "a line break or tab inside quotes must be written \\n or \\t"
    if message.startswith("Invalid \\uXXXX"):
        return "\\u must be followed by four hex digits"
    if message.startswith("Invalid \\escape"):
        return "a backslash inside quotes must be doubled (\\\\)"
    if message.startswith("Extra data"):
        return "there is more after the value (several values go in a list: [ … ])"
    if message.startswith("Illegal trailing comma"):
        return f"there is a comma too many before {'}' if 'object' in message else ']'}"
    return message[:1].lower() + message[1:]


def _missing_value(doc: str, at: int, here: str) -> str:
    if not here:
        return "it ends too early: a value is missing"
    if here == "]" and doc[:at].rstrip().endswith(","):
        return "there is a comma too many before ]"
    if here == "'":
        return "text needs double quotes, not single quotes"
    if here and here in "}]":
        return f"a value is missing before {here}"
    word = re.match(r"[A-Za-z_]\w*", doc[at:])
    if word is not None:
        if word[0] in _WORDS:
            return "true, false and null are written in lower case"
        return "text needs double quotes"
    return "a value is missing or misspelt"

"""An example of what a pattern accepts, so an error can say "must look like 1.2.3" instead
of quoting `^\\d+\\.\\d+\\.\\d+$` at someone who does not read regular expressions.

Only simple patterns get one (literals, `\\d`, `\\w`, `[a-z0-9]` classes, quantifiers, `^`,
`$`); anything else (groups, alternatives, `.`) is better shown as it is. Every example is
checked against its pattern with RE2, as the schema check itself runs patterns.
"""

from __future__ import annotations

import re

import re2

__all__ = ["EXAMPLE_CHARS", "pattern_example"]

EXAMPLE_CHARS = 40

#: one piece of a simple pattern: a class or a literal, then an optional quantifier
_PIECE = re.compile(
    r"(?P<atom>\\[dws]|\\[\\.\-/_:@#+*?^$()\[\]{}|]|\[[A-Za-z0-9_\-.:/@# ]+\]"
    r"|[^\\.^$*+?()\[\]{}|])"
    r"(?P<quantifier>[+*?]|\{\d+(?:,\d*)?\})?"
)
_CLASS_RANGE = re.compile(r"(.)-(.)|(.)", re.DOTALL)
#: how many letters a `+` or `*` stands for: `[a-z]+` reads better as `abc` than as `a`
_LETTERS = 3


def pattern_example(pattern: str) -> str | None:
    """A short string the pattern accepts (`^\\d+\\.\\d+\\.\\d+$` → `1.2.3`), or None when the
    pattern is not a simple one."""
    body = pattern.removeprefix("^")
    if body.endswith("$") and not body.endswith("\\$"):
        body = body[:-1]
    counter = iter(range(1, 10_000))
    example = ""
    at = 0
    while at < len(body):
        piece = _PIECE.match(body, at)
        if piece is None:
            return None
        at = piece.end()
        atom = piece["atom"]
        is_class = atom in ("\\d", "\\w", "\\s") or atom.startswith("[")
        times = _times(piece["quantifier"], letters=is_class and atom != "\\d")
        if times is None:
            return None
        for _ in range(times):
            example += _sample(atom, next(counter)) if is_class else _literal_char(atom)
        if len(example) > EXAMPLE_CHARS:
            return None
    if not example.strip():
        return None
    try:  # RE2, as the check itself runs it: linear, whatever the pattern
        return example if re2.search(pattern, example) is not None else None
    except (re2.error, TypeError, ValueError):
        return None


def _times(quantifier: str | None, *, letters: bool) -> int | None:
    if quantifier is None or quantifier == "?":
        return 1
    if quantifier in ("+", "*"):
        return _LETTERS if letters else 1
    low, _, high = quantifier.strip("{}").partition(",")
    least = int(low)
    if least > EXAMPLE_CHARS:
        return None
    if least == 0:
        return 1 if not high or int(high) > 0 else 0
    return least


def _literal_char(atom: str) -> str:
    return atom[1] if atom.startswith("\\") else atom


def _sample(atom: str, n: int) -> str:
    """The `n`th sample of a class: digits count up (1.2.3), letters walk the alphabet."""
    if atom == "\\d":
        return str(n % 10)
    if atom == "\\w":
        return "abcdefghijklmnopqrstuvwxyz"[(n - 1) % 26]
    if atom == "\\s":
        return " "
    first = _CLASS_RANGE.match(atom[1:-1])
    if first is None:
        return "?"
    if first[1] is None:
        return first[3]
    start, end = ord(first[1]), ord(first[2])
    return chr(start + (n - 1) % (end - start + 1)) if end >= start else first[1]

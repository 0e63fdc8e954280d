"""How long the worst `argsSchema` cases take, and how long they hold the event loop.

    .venv/bin/python scripts/schema-costs.py

Each case is compiled (`compile_schema`, on the loop as at submission) and checked
(`ArgsSchema.errors`, on the loop when quick, else in the worker) while a heartbeat on the same
loop records its longest gap: how long the loop was held.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from bot.schemas import SchemaRefused, Uncheckable, compile_schema


def exponential(levels: int = 24) -> dict[str, Any]:
    defs: dict[str, Any] = {
        f"a{i}": {"allOf": [{"$ref": f"#/$defs/a{i + 1}"}, {"$ref": f"#/$defs/a{i + 1}"}]}
        for i in range(levels)
    }
    defs[f"a{levels}"] = {"type": "integer"}
    return {"type": "object", "$defs": defs, "properties": {"x": {"$ref": "#/$defs/a0"}}}


CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "backtracking pattern": (
        {"type": "object", "properties": {"s": {"pattern": "^(a+)+$"}}},
        {"s": "a" * 28 + "!"},
    ),
    "DFA-hostile pattern on 1 MB": (
        {"type": "object", "properties": {"s": {"pattern": "(?:[a-f][a-z]{50}){20}q"}}},
        {"s": "".join(random.Random(1).choices("abcdefghijklmnopqrstuvwxyz", k=1_000_000))},
    ),
    "uniqueItems, 8000 objects": (
        {"type": "object", "properties": {"rows": {"uniqueItems": True}}},
        {"rows": [{"i": i, "tag": "x"} for i in range(8000)]},
    ),
    "2**24 $ref visits": (exponential(), {"x": 1}),
    "$ref loop": ({"type": "object", "$ref": "#"}, {}),
    "64 KiB: 21,000 subschemas": ({"type": "object", "allOf": [{}] * 21_000}, {}),
    "64 KiB, with an anchor": (
        {"type": "object", "allOf": [{}] * 20_000, "$defs": {"a": {"$anchor": "a"}}},
        {},
    ),
    "64 KiB: 600 typed properties": (
        {
            "type": "object",
            "properties": {
                f"p{i:04}": {"type": "string", "maxLength": 64, "description": "x" * 40}
                for i in range(600)
            },
        },
        {f"p{i:04}": "value" for i in range(600)},
    ),
}


async def measure(schema: dict[str, Any], args: dict[str, Any]) -> tuple[str, float, float]:
    held = 0.0
    done = False

    async def heartbeat() -> None:
        nonlocal held
        while not done:
            before = time.perf_counter()
            await asyncio.sleep(0)
            held = max(held, time.perf_counter() - before)

    beating = asyncio.create_task(heartbeat())
    await asyncio.sleep(0.01)
    started = time.perf_counter()
    try:
        compiled = compile_schema(schema)
        await asyncio.sleep(0)
        errors = await compiled.errors(args)
        outcome = f"{len(errors)} error(s)"
    except (SchemaRefused, Uncheckable) as exc:
        outcome = f"refused: {str(exc)[:60]}"
    took = time.perf_counter() - started
    done = True
    await beating
    return outcome, took, held


async def main() -> None:
    for name, (schema, args) in CASES.items():
        outcome, took, held = await measure(schema, args)
        print(f"{name:32} {took * 1000:7.1f} ms, loop held {held * 1000:5.1f} ms  {outcome}")


if __name__ == "__main__":
    asyncio.run(main())

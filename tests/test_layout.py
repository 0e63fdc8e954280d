"""The folder listing shows the architecture: only the Slack edge speaks Slack, and the core
(models, store, service) imports no edge."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

BOT = Path(__file__).parent.parent / "bot"


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def modules(under: Path) -> list[Path]:
    return sorted(p for p in under.rglob("*.py") if "__pycache__" not in p.parts)


def test_only_the_slack_edge_and_the_local_slack_speak_slack() -> None:
    speaking = {
        str(path.relative_to(BOT))
        for path in modules(BOT)
        if any(name.split(".")[0] in ("slack_sdk", "slack_bolt") for name in imports_of(path))
    }
    assert speaking, "nothing imports Slack's libraries: the test looks in the wrong place"
    outside = {p for p in speaking if not p.startswith(("slack/", "devslack/", "dev/"))}
    assert outside == set()


@pytest.mark.parametrize("core", ["models.py", "errors.py", "service.py", "policy.py", "store"])
def test_the_core_imports_no_edge(core: str) -> None:
    where = BOT / core
    for path in modules(where) if where.is_dir() else [where]:
        edges = {
            name
            for name in imports_of(path)
            if name.startswith(("bot.slack", "bot.api", "bot.cli", "bot.app", "bot.dev", "bot.sdk"))
        }
        assert edges == set(), f"{path.relative_to(BOT)} imports {sorted(edges)}"

"""The README is the manual: every command, flag and setting the code has must be in it."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from bot.cli import _parser
from bot.config import ENV

README = (Path(__file__).parent.parent / "README.md").read_text()


def subcommands() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@pytest.mark.parametrize("name", sorted(ENV))
def test_every_setting_is_documented(name: str) -> None:
    assert f"`{name}`" in README


@pytest.mark.parametrize("command", sorted(subcommands()))
def test_every_command_and_flag_is_documented(command: str) -> None:
    assert f"approval-bot {command}" in README
    flags = [
        option
        for action in subcommands()[command]._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    ]
    missing = [flag for flag in flags if flag not in README]
    assert not missing, f"approval-bot {command}: {missing} not in README"


def test_the_two_quickstart_commands_are_there() -> None:
    assert "make run" in README and "make test" in README


@pytest.mark.parametrize(
    "example", sorted(p.name for p in (Path(__file__).parent.parent / "examples").glob("*.py"))
)
def test_every_example_is_in_the_readme_verbatim(example: str) -> None:
    code = (Path(__file__).parent.parent / "examples" / example).read_text().rstrip("\n")
    assert f"```python\n{code}\n```" in README, f"examples/{example} differs from the README"

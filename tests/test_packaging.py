"""Packaging: `make run`'s `pip install -e .` builds quietly and installs everything the bot
imports (issue 15: the first `make run` printed setuptools' banner; `make run` installs the bot
alone, without the dev extra).

The build runs as `make run` runs it, in an isolated environment with the newest setuptools, on a
copy of the checkout (`bot/`, `pyproject.toml`, `README.md`) installed into a scratch virtualenv
(`pip --python`), so the checkout and the environment running the tests are left as they are.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, distribution, packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).parent.parent
#: modules that are the extras' business: each adapter names the extra it needs
EXTRAS_ONLY = ("bot/adapters/", "bot/mcp_server.py")
#: what setuptools prints when it has to guess the layout of an editable install
BANNER = "Please be careful with folders"


def _checkout_copy(into: Path) -> Path:
    project = into / "project"
    shutil.copytree(ROOT / "bot", project / "bot", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, project / name)
    return project


@pytest.mark.timeout(180)
def test_an_editable_install_prints_no_setuptools_banner(tmp_path: Path) -> None:
    project = _checkout_copy(tmp_path)
    scratch = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(scratch)], check=True)
    # never `--prefix` or `--target`: pip would uninstall this environment's approval-bot first
    install = [sys.executable, "-m", "pip", "--python", str(scratch / "bin" / "python")]
    install += ["install", "--quiet", "--no-deps", "--disable-pip-version-check"]
    done = subprocess.run(
        [*install, "-e", str(project)], capture_output=True, text=True, timeout=170, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output  # the isolated build gets setuptools from the index
    assert BANNER not in output
    assert "BuildBackendWarning" not in output


def _installed_by(requirements: list[str]) -> set[str]:
    """Every distribution `pip install` of `requirements` brings, extras and all."""
    seen: set[str] = set()
    todo = [Requirement(text) for text in requirements]
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        key = f"{name}[{','.join(sorted(requirement.extras))}]"
        if key in seen:
            continue
        seen.add(key)
        try:
            requires = distribution(name).requires or []
        except PackageNotFoundError:
            continue
        for text in requires:
            needed = Requirement(text)
            extras = requirement.extras or {""}
            if needed.marker is None or any(needed.marker.evaluate({"extra": e}) for e in extras):
                todo.append(needed)
    return {key.split("[")[0] for key in seen}


def _third_party_imports() -> Iterator[tuple[str, str]]:
    """(top-level module, file) for each import of the bot's own code outside the extras."""
    for path in sorted((ROOT / "bot").rglob("*.py")):
        where = path.relative_to(ROOT).as_posix()
        if where.startswith(EXTRAS_ONLY):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top != "bot" and top not in sys.stdlib_module_names:
                    yield top, where


def test_the_bot_imports_only_what_it_depends_on() -> None:
    """`approval-bot dev` on a `make run` install read `manifest.yml` with PyYAML, which only
    the dev extra installed: `ModuleNotFoundError: No module named 'yaml'`."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    installed = _installed_by(project["dependencies"])
    providers = packages_distributions()
    missing = sorted(
        f"{module} ({where})"
        for module, where in _third_party_imports()
        if not {canonicalize_name(d) for d in providers.get(module, [])} & installed
    )
    assert missing == []

"""Results on disk: measure dataclasses as JSON, merged into `results.json`."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_DIR", "jsonable", "read_results", "write_results"]

#: where `make bench` writes results.json and the PNGs
DEFAULT_DIR = Path(__file__).parent
RESULTS = "results.json"


def jsonable(value: Any) -> Any:
    """Dataclasses as dicts (without fields marked `metadata={"json": False}`), tuples as lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: jsonable(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if f.metadata.get("json", True)
        }
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def read_results(directory: Path) -> dict[str, Any]:
    """What the last runs wrote, or nothing."""
    path = directory / RESULTS
    if not path.exists():
        return {}
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def write_results(directory: Path, results: dict[str, Any]) -> Path:
    """Write `results.json`; returns its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / RESULTS
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    return path

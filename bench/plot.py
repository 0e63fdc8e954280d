"""Latency distributions as PNGs: one cumulative curve per series, on a log time axis."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bench.stats import Latency, ms

__all__ = ["Panel", "plot"]

#: (title, [(label, latency)], target in ms or None)
Panel = tuple[str, Sequence[tuple[str, Latency]], float | None]


def plot(path: Path, panels: Sequence[Panel], title: str) -> Path:
    """Draw `panels` side by side into `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.5), squeeze=False)
    for ax, (name, series, target) in zip(axes[0], panels, strict=True):
        for label, latency in series:
            ordered = sorted(latency.samples)
            if not ordered:
                continue
            fraction = [(i + 1) / len(ordered) for i in range(len(ordered))]
            text = f"{label}: p50 {ms(latency.p50)}, p99 {ms(latency.p99)}"
            ax.step(ordered, fraction, where="post", label=text)
        if target is not None:
            ax.axvline(target, color="grey", linestyle="--", linewidth=1)
            ax.text(target, 0.02, f" target p99 {target:g} ms", color="grey", fontsize=8)
        ax.axhline(0.99, color="lightgrey", linewidth=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("latency, ms (log)")
        ax.set_ylabel("fraction of samples at or below")
        ax.set_ylim(0, 1.01)
        ax.set_title(name, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path

"""What the kernel says about a process: CPU time and resident memory, from /proc."""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CpuMeter", "OtherWork", "cpu_seconds", "machine", "rss_mb"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of every thread of `pid` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """Resident set size of `pid` in MB (MiB, as /proc counts)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


@dataclass
class CpuMeter:
    """CPU used by one process over a stretch of wall time, as % of one core."""

    pid: int
    _cpu: float = 0.0
    _wall: float = 0.0

    def start(self) -> None:
        self._cpu, self._wall = cpu_seconds(self.pid), time.perf_counter()

    def percent(self) -> float:
        """% of one core since `start()`."""
        wall = time.perf_counter() - self._wall
        return 100 * (cpu_seconds(self.pid) - self._cpu) / wall if wall > 0 else 0.0

    def seconds(self) -> float:
        """Wall seconds since `start()`."""
        return time.perf_counter() - self._wall


def machine() -> str:
    """Cores, CPU model, memory and Python, for the top of the report."""
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
    return f"{os.cpu_count()} cores, {model}, {memory:.0f} GiB, Python {platform.python_version()}"


def _busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy, all cores together."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    """CPU seconds of this process and of its children that have exited (the bots it ran)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


@dataclass
class OtherWork:
    """How much CPU processes other than this one and its children took during a run."""

    _busy: float = 0.0
    _own: float = 0.0
    _wall: float = 0.0

    def start(self) -> None:
        self._busy, self._own, self._wall = _busy_seconds(), _own_seconds(), time.perf_counter()

    def cores(self) -> float:
        """Cores' worth of CPU others used since `start()`, once every child has exited."""
        wall = time.perf_counter() - self._wall
        others = (_busy_seconds() - self._busy) - (_own_seconds() - self._own)
        return max(0.0, others / wall) if wall > 0 else 0.0

"""Process memory and CPU time from /proc (Linux), for the processes a benchmark started."""

from __future__ import annotations

import os
from pathlib import Path

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (resident now) and VmHWM (peak resident) in KiB."""
    found: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0])
    return {"rss_kib": found["VmRSS"], "peak_rss_kib": found["VmHWM"]}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    # Field 2 (comm) may contain spaces; everything after its closing parenthesis is space-separated.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / _CLOCK_TICKS


def descendants(pid: int) -> list[int]:
    """Child processes, recursively (gunicorn's workers under its arbiter)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def tree_rss_kib(pid: int) -> int:
    """Resident memory of a process and its descendants (shared pages counted in each)."""
    total = 0
    for member in [pid, *descendants(pid)]:
        try:
            total += memory_kib(member)["rss_kib"]
        except (OSError, KeyError):
            continue  # exited between listing and reading
    return total

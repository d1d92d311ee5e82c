"""Timing and reporting: medians of repeated runs after a warm-up, written to results.json."""

from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Figure", "Suite", "machine", "median_seconds"]


def median_seconds(fn: Callable[[], object], *, repeats: int, warmup: int = 1) -> float:
    """Median wall time of `fn` over `repeats` runs, after `warmup` discarded runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


@dataclass
class Figure:
    """One measured value beside its anchor; `ratio` = how many times better than the anchor
    (anchor/value for times and memory, value/anchor for rates)."""

    value: float
    unit: str
    anchor: str
    anchor_value: float
    higher_is_better: bool = False
    note: str = ""

    @property
    def ratio(self) -> float:
        if self.higher_is_better:
            return self.value / self.anchor_value if self.anchor_value else 0.0
        return self.anchor_value / self.value if self.value else 0.0

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "value": round(self.value, 6),
            "unit": self.unit,
            "anchor": self.anchor,
            "anchor_value": round(self.anchor_value, 6),
            "ratio": round(self.ratio, 3),
        }
        if self.note:
            out["note"] = self.note
        return out


@dataclass
class Suite:
    repeats: int
    figures: dict[str, Figure] = field(default_factory=dict)

    def add(self, name: str, figure: Figure) -> None:
        self.figures[name] = figure
        print(
            f"{name:<44} {figure.value:>12.4f} {figure.unit:<8} vs {figure.anchor} "
            f"{figure.anchor_value:.4f}  ratio {figure.ratio:.2f}x",
            flush=True,
        )

    def write(self, path: Path, *, merge: bool = False) -> None:
        """Write the figures; with `merge`, keep the file's other figures (a partial rerun
        replaces only the figures it measured, each still beside its own anchor)."""
        figures: dict[str, Any] = {}
        if merge and path.exists():
            figures = json.loads(path.read_text()).get("figures", {})
        figures.update({name: fig.as_json() for name, fig in self.figures.items()})
        doc = {"machine": {**machine(), "repeats": self.repeats}, "figures": figures}
        path.write_text(json.dumps(doc, indent=2) + "\n")

"""describe beside load_history on the 50k run; the runs read model's catch-up rate."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any, Literal

from bench.harness import Figure, Suite, median_seconds
from runhistory import RunHistory, describe, load_history


def run(
    suite: Suite,
    long_doc: dict[str, Any],
    many: list[dict[str, Any]],
    conformance: Path,
    *,
    quick: bool,
) -> None:
    size = len(long_doc["events"])
    load = median_seconds(lambda: load_history(long_doc), repeats=suite.repeats)
    loaded = load_history(long_doc)
    took = median_seconds(lambda: describe(loaded), repeats=suite.repeats)
    suite.add(
        f"describe of the {size}-event run vs its load_history",
        Figure(took, "s", "load_history", load, note="target: at most 10% of load time"),
    )
    try:
        from runhistory.projections.catalog import catch_up
    except ImportError:
        print("skipping the catch-up figure: runhistory.projections.catalog not available")
        return
    directory = Path(tempfile.mkdtemp(prefix="rh-bench-catalog-"))
    app = RunHistory.open(f"sqlite:///{directory / 'source.db'}")
    events = 0
    for doc in many:
        app.import_history(doc)
        events += len(doc["events"])
    modes: tuple[tuple[Literal["none", "closed"], str], ...] = (
        ("none", "catch-up"),
        ("closed", "catch-up + whole-history columns"),
    )
    for derive, what in modes:
        view = f"sqlite:///{directory / f'view-{derive}.db'}"
        start = time.perf_counter()
        applied = catch_up(app, view, derive_runs=derive)
        rate = applied / (time.perf_counter() - start)
        suite.add(
            f"runs read model {what} over {len(many)} runs on SQLite",
            Figure(
                rate,
                "events/s",
                "target 50,000 events/s",
                50_000.0,
                higher_is_better=True,
                note=f"{applied} events applied",
            ),
        )

"""describe beside load_history on the 50k run; the runs read model's catch-up rate."""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from bench import datasets
from bench.harness import Figure, Suite, median_seconds
from runhistory import RunHistory, describe, load_history

__all__ = ["CATCH_UP_RUNS", "CATCH_UP_RUNS_QUICK", "catch_up_rates", "run"]

# The runs projection's own dataset (issue 6); `--quick` keeps `make bench-quick` short.
CATCH_UP_RUNS = 10_000
CATCH_UP_RUNS_QUICK = 200
_MODES: tuple[tuple[Literal["none", "closed"], str], ...] = (
    ("none", "catch-up"),
    ("closed", "catch-up + whole-history columns"),
)


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
        from runhistory.projections.catalog import catch_up  # noqa: F401
    except ImportError:
        print("skipping the catch-up figures: runhistory.projections.catalog not available")
        return
    catch_up_rates(suite, many)
    count = CATCH_UP_RUNS_QUICK if quick else CATCH_UP_RUNS
    catch_up_rates(suite, datasets.many_runs(conformance, count))


def catch_up_rates(suite: Suite, docs: Iterable[dict[str, Any]]) -> None:
    """The runs read model's catch-up over `docs` stored in a SQLite store, with and without
    the whole-history columns: each figure the median of `suite.repeats` catch-ups (after a
    warm-up), each into a fresh view database, every one checked to apply every event."""
    from runhistory.projections.catalog import catch_up

    directory = Path(tempfile.mkdtemp(prefix="rh-bench-catalog-"))
    try:
        app = RunHistory.open(f"sqlite:///{directory / 'source.db'}")
        runs, events = _store(app, docs)
        fresh = itertools.count()
        for derive, what in _MODES:

            def once(derive: Literal["none", "closed"] = derive) -> None:
                view = directory / f"view-{next(fresh)}.db"
                applied = catch_up(app, f"sqlite:///{view}", derive_runs=derive)
                for leftover in directory.glob(f"{view.name}*"):  # with -wal, -shm
                    leftover.unlink()
                if applied != events:
                    raise AssertionError(f"the catch-up applied {applied} of {events} events")

            took = median_seconds(once, repeats=max(suite.repeats, 1))
            suite.add(
                f"runs read model {what} over {runs} runs on SQLite",
                Figure(
                    events / took,
                    "events/s",
                    "target 50,000 events/s",
                    50_000.0,
                    higher_is_better=True,
                    note=f"{events} events; median of {suite.repeats} after a warm-up",
                ),
            )
        app.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _store(
    app: RunHistory, docs: Iterable[dict[str, Any]], *, per_save: int = 100
) -> tuple[int, int]:
    """Validate and store the runs, `per_save` runs per transaction (storing is not what is
    measured here; one transaction per run made the 10,000 runs take minutes). Returns (runs,
    events)."""
    runs = events = 0
    pending: list[Any] = []
    for doc in docs:
        new = load_history(doc).collect_events()
        runs += 1
        events += len(new)
        pending.extend(new)
        if runs % per_save == 0:
            app.save(*pending)
            pending = []
    if pending:
        app.save(*pending)
    return runs, events

"""Concurrency: 8 processes import overlapping runs, and append the tails of the same runs,
into one SQLite file, one PostgreSQL database and one files directory at once.

Each process takes a random, overlapping share of the runs, in its own order; for some runs it
imports the whole history, for others a prefix and then `append`s the rest onto whatever the
store holds by then. A writer that loses a race must get a typed error (a HistoryError such as
RunConflict or EventOutOfSequence, or eventsourcing's IntegrityError), never anything else, and
its retry (an idempotent whole import) must succeed. Afterwards no event is lost or duplicated:
every run exports equal to its source. Short form: 16 runs, each process taking 10;
`RUNHISTORY_LONG=1`: 80 runs, 40 each, three rounds. `RUNHISTORY_SEED` fixes the choices.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import time
from collections import Counter
from functools import cache
from typing import Any

import orjson
import pytest

from runhistory.adapters.history_json import load_history
from tests.reliability.concurrent_worker import Job, Outcome, work
from tests.reliability.support import (
    STORE_KINDS,
    check_store,
    long_or_short,
    open_store,
    renamed,
    small_histories,
)

WRITERS = 8
RUNS = long_or_short(80, 16, "RUNHISTORY_CONC_RUNS")
SHARE = long_or_short(40, 10, "RUNHISTORY_CONC_SHARE")
ROUNDS = long_or_short(3, 1, "RUNHISTORY_CONC_ROUNDS")


@cache
def _cuts(label: str) -> list[int]:
    """Prefix lengths that are valid open runs on their own (so only a race can fail them)."""
    events = orjson.loads(dict(small_histories())[label])["events"]
    valid = []
    for cut in range(1, len(events)):
        try:
            run = load_history({"events": events[:cut]})
        except Exception:  # noqa: BLE001 - an invalid prefix is simply not used
            continue
        if run.durable_length == cut:
            valid.append(cut)
    return valid


def _jobs(rng: random.Random, docs: list[dict[str, Any]], cuts: list[list[int]]) -> list[Job]:
    jobs: list[Job] = []
    for index in rng.sample(range(len(docs)), SHARE):
        doc = docs[index]
        wid = doc["events"][0]["workflowExecutionStartedEventAttributes"]["workflowId"]
        cut = rng.choice(cuts[index]) if cuts[index] and rng.random() < 0.5 else 0
        jobs.append((wid, doc, cut))
    return jobs


def _shares(
    rng: random.Random, docs: list[dict[str, Any]], cuts: list[list[int]]
) -> list[list[Job]]:
    """One random share per writer; a run no share drew goes to one writer, so every run is
    written and the store must end with all of them (random shares alone miss one now and then).
    """
    shares = [_jobs(rng, docs, cuts) for _ in range(WRITERS)]
    drawn = {wid for share in shares for wid, _, _ in share}
    for doc in docs:
        wid = doc["events"][0]["workflowExecutionStartedEventAttributes"]["workflowId"]
        if wid not in drawn:
            shares[rng.randrange(WRITERS)].append((wid, doc, 0))
    return shares


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_eight_writers_lose_races_with_typed_errors_and_lose_no_event(kind: str) -> None:
    seed = int(os.environ.get("RUNHISTORY_SEED") or time.time_ns() % 1_000_000)
    rng = random.Random(seed)
    histories = small_histories()
    context = multiprocessing.get_context("spawn")
    errors: Counter[str] = Counter()
    retried = contended = 0
    every: list[dict[str, Any]] = []
    with open_store(kind) as store:
        store.open().close()  # create the tables once, before the race
        for round_ in range(ROUNDS):
            docs, cuts = [], []
            for i in range(RUNS):
                label, raw = histories[rng.randrange(len(histories))]
                docs.append(renamed(raw, f"conc-{round_}-{i}-{label}"))
                cuts.append(_cuts(label))
            every.extend(docs)
            start = context.Barrier(WRITERS)
            results = context.Queue()
            shares = _shares(rng, docs, cuts)
            processes = [
                context.Process(
                    target=work, args=(store.url, store.env, share, start, results, who)
                )
                for who, share in enumerate(shares)
            ]
            for process in processes:
                process.start()
            reports = [results.get(timeout=300) for _ in processes]
            for process in processes:
                process.join(timeout=60)
                assert process.exitcode == 0
            outcomes: list[Outcome] = [o for _, done, _ in reports for o in done]
            untyped = [u for _, _, failures in reports for u in failures]
            assert untyped == [], f"seed {seed}: untyped errors escaped: {untyped}"
            assert all(stored for *_, stored in outcomes), f"seed {seed}: a retry never succeeded"
            errors.update(first for _, first, _, _ in outcomes if first)
            retried += sum(retries for _, _, retries, _ in outcomes)
            taken = Counter(wid for wid, *_ in outcomes)
            contended += sum(1 for n in taken.values() if n > 1)
            app = store.open()
            try:
                assert check_store(app, docs) == (len(docs), 0), f"seed {seed}"
            finally:
                app.close()
        app = store.open()
        try:
            assert check_store(app, every) == (len(every), 0)
            assert [app.import_history(doc).appended for doc in every] == [0] * len(every)
        finally:
            app.close()
    print(
        f"RUNHISTORY_SEED={seed} kind={kind} writers={WRITERS} runs={len(every)}"
        f" contended={contended} first-attempt errors={dict(errors)} retries={retried}"
    )

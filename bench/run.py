"""`make bench`: every figure beside its anchor, measured in the same run, written to
bench/results.json (the README's table is generated from it by bench/readme_table.py).

`--quick` is a smoke run for CI (one repeat, small data) and writes bench/results.quick.json."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench import datasets, history_json, projections, stores
from bench.harness import Suite

ROOT = Path(__file__).resolve().parent
SHARED = ROOT.parent.parent / "shared"
LONG_HISTORY = SHARED / "bench" / "long-history-50k.json.gz"
CONFORMANCE = SHARED / "conformance"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke run: one repeat, small data")
    parser.add_argument("--only", choices=("json", "stores", "projections"), help="one group")
    args = parser.parse_args()
    suite = Suite(repeats=1 if args.quick else 5)
    if not LONG_HISTORY.exists() or not CONFORMANCE.exists():
        print(f"benchmark data not found beside the project ({SHARED}); nothing measured")
        return 1
    long_doc = datasets.long_history(LONG_HISTORY)
    if args.quick:
        long_doc = {"events": long_doc["events"][:5000]}
    run_count = 50 if args.quick else 1000
    many = list(datasets.many_runs(CONFORMANCE, run_count))
    label = f"{run_count} runs ({sum(len(d['events']) for d in many)} events)"
    if args.only in (None, "json"):
        history_json.run(suite, LONG_HISTORY, limit=5000 if args.quick else None)
    if args.only in (None, "stores"):
        long_runs = stores.stored_runs([long_doc])
        many_runs = stores.stored_runs(many)
        long_label = f"{len(long_doc['events'])}-event run"
        stores.mapping(suite, long_label, long_runs)
        stores.sqlite_import(suite, long_label, long_runs)
        stores.sqlite_import(suite, label, many_runs)
        stores.postgres_import(suite, long_label, long_runs, with_eventsourcing=args.quick)
        stores.postgres_import(suite, label, many_runs)
        even_runs = stores.stored_runs(list(datasets.even_runs(CONFORMANCE, run_count)))
        even_label = f"{run_count} runs x 100 events"
        stores.sqlite_import(suite, even_label, even_runs)
        stores.postgres_import(suite, even_label, even_runs)
        stores.rebuild(suite, long_doc)
    if args.only in (None, "projections"):
        projections.run(suite, long_doc, many, CONFORMANCE, quick=args.quick)
    out = ROOT / ("results.quick.json" if args.quick else "results.json")
    suite.write(out, merge=args.only is not None)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Write the README's benchmark table from bench/results.json (between its bench-table markers),
so the README cannot drift from the measured figures."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- bench-table -->", "<!-- /bench-table -->"


def table(results: dict[str, object]) -> str:
    machine = results["machine"]
    figures = results["figures"]
    assert isinstance(machine, dict) and isinstance(figures, dict)
    lines = [
        f"Measured by `make bench` on {machine['cpu']} ({machine['cores']} cores), Python "
        f"{machine['python']}, median of {machine['repeats']} runs after a warm-up. The ratio is "
        "how many times better than the anchor measured in the same run (higher is better).",
        "",
        "| figure | ours | anchor | anchor value | ratio |",
        "|---|---|---|---|---|",
    ]
    for name, fig in figures.items():
        unit = fig["unit"]
        lines.append(
            f"| {name} | {fig['value']:,.3f} {unit} | {fig['anchor']} | "
            f"{fig['anchor_value']:,.3f} {unit} | {fig['ratio']:.2f}x |"
        )
    return "\n".join(lines)


def main() -> int:
    results = json.loads((ROOT / "bench" / "results.json").read_text())
    readme = ROOT / "README.md"
    text = readme.read_text()
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    readme.write_text(f"{head}{START}\n{table(results)}\n{END}{tail}")
    print(f"updated {readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The real-server recordings in ../shared/conformance, for tests."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CONFORMANCE = Path(
    os.environ.get("RUNHISTORY_CONFORMANCE_DIR", ROOT.parent / "shared" / "conformance")
)


def final_histories() -> Iterator[tuple[str, Path]]:
    """(label, path) of every recorded execution's final history."""
    for scenario in sorted(CONFORMANCE.glob("*/scenario.json")):
        for execution in json.loads(scenario.read_text())["executions"]:
            path = scenario.parent / execution["history"]
            yield f"{scenario.parent.name}/{path.name}", path


def checkpoint_histories() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted(CONFORMANCE.glob("*/checkpoints/*.json")):
        yield f"{path.parent.parent.name}/{path.name}", json.loads(path.read_text())

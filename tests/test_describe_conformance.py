"""`describe` and `state_transitions` against what a real Temporal server reported.

Every recorded execution that has a describe, and every mid-run checkpoint whose describe and
history agree on the history length, is compared on the fields a history can know exactly
(status, length, size, close time, pending work) and on the state-transition count: exactly
when the projection claims exactness, else within its bounds; and the best estimate must equal
the server's count on at least 85% of the recordings.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from typing import Any

import pytest

from runhistory.adapters.history_json import load_history
from runhistory.domain.run import WorkflowRun
from runhistory.projections import describe, history_size_bytes, state_transitions
from tests.conformance_data import CONFORMANCE

Case = tuple[str, dict[str, Any], dict[str, Any]]


def _cases() -> Iterator[Case]:
    for scenario in sorted(CONFORMANCE.glob("*/scenario.json")):
        for execution in json.loads(scenario.read_text())["executions"]:
            if not execution.get("describe"):
                continue
            describe_path = scenario.parent / execution["describe"]
            if describe_path.exists():
                history = json.loads((scenario.parent / execution["history"]).read_text())
                label = f"{scenario.parent.name}/{execution['history']}"
                yield label, history, json.loads(describe_path.read_text())
    for path in sorted(CONFORMANCE.glob("*/checkpoints/*.json")):
        data = json.loads(path.read_text())
        if data.get("lengthsMatch"):
            yield (
                f"{path.parent.parent.name}/checkpoints/{path.name}",
                data["history"],
                data["describe"],
            )


CASES = list(_cases())
IDS = [label for label, _, _ in CASES]


@cache
def _run(label: str) -> WorkflowRun:
    history = next(h for name, h, _ in CASES if name == label)
    return load_history(history)


def _server(label: str) -> dict[str, Any]:
    return next(d for name, _, d in CASES if name == label)


def _pending(d: dict[str, Any]) -> tuple[Any, ...]:
    return (
        sorted(str(a.get("activityId")) for a in d.get("pendingActivities") or []),
        sorted(
            (c.get("workflowId"), str(c.get("initiatedId"))) for c in d.get("pendingChildren") or []
        ),
        sorted(str(x.get("scheduledEventId")) for x in d.get("pendingNexusOperations") or []),
        (d.get("pendingWorkflowTask") or {}).get("state"),
    )


def test_there_are_recordings_to_compare_with() -> None:
    assert len(CASES) >= 100


@pytest.mark.parametrize("label", IDS)
def test_describe_matches_the_server_on_what_history_knows(label: str) -> None:
    server = _server(label)
    mine = describe(_run(label))
    theirs, ours = server["workflowExecutionInfo"], mine["workflowExecutionInfo"]
    for field in ("status", "historyLength", "historySizeBytes", "closeTime", "taskQueue"):
        assert str(ours.get(field)) == str(theirs.get(field)), field
    assert ours["execution"] == theirs["execution"]
    assert _pending(mine) == _pending(server)


@pytest.mark.parametrize("label", IDS)
def test_the_server_count_lies_within_the_derived_bounds(label: str) -> None:
    want = int(_server(label)["workflowExecutionInfo"]["stateTransitionCount"])
    stc = state_transitions(_run(label), server_count=want)
    assert stc.server == want
    assert stc.lower <= stc.value and (stc.upper is None or stc.value <= stc.upper)
    if stc.exact:
        assert stc.value == want
        assert not stc.reasons
    else:
        assert stc.lower <= want and (stc.upper is None or want <= stc.upper)
        assert stc.reasons


def test_the_best_estimate_equals_the_server_count_on_85_percent() -> None:
    equal = sum(
        state_transitions(_run(label)).value
        == int(_server(label)["workflowExecutionInfo"]["stateTransitionCount"])
        for label in IDS
    )
    assert equal >= 0.85 * len(IDS), f"{equal}/{len(IDS)}"


@pytest.mark.parametrize("label", IDS)
def test_history_size_is_exact_without_the_server_checkpoints(label: str) -> None:
    want = int(_server(label)["workflowExecutionInfo"]["historySizeBytes"])
    assert history_size_bytes(_run(label), use_checkpoints=False) == want


@pytest.mark.parametrize(
    "path", sorted(CONFORMANCE.glob("*/checkpoints/*.json")), ids=lambda p: str(p.name)
)
def test_history_size_ignores_the_transient_tail(path: Any) -> None:
    data = json.loads(path.read_text())
    run = load_history(data["history"])
    assert history_size_bytes(run) == int(
        data["describe"]["workflowExecutionInfo"]["historySizeBytes"]
    )
    info = describe(run)["workflowExecutionInfo"]
    assert info["historyLength"] == data["describe"]["workflowExecutionInfo"]["historyLength"]


def test_a_closed_run_keeps_what_was_pending_at_close() -> None:
    run = _run("activity_cancel_abandon/history.json")
    assert run.is_closed
    mine = describe(run)
    assert [a["activityId"] for a in mine["pendingActivities"]] == ["1"]
    assert "state" not in mine["pendingActivities"][0]  # STARTED or not is invisible (I11)
    assert "attempt" not in mine["pendingActivities"][0]


def test_fields_history_cannot_know_are_omitted_and_listed() -> None:
    mine = describe(_run("workflow_reset/history.json"))
    info = mine["workflowExecutionInfo"]
    assert "startTime" not in info  # a reset run's start is the reset time: not in history
    assert info["stateTransitionCount"] == mine["runhistory"]["stateTransitions"]["value"]
    assert any("reset run" in note for note in mine["runhistory"]["omitted"])
    assert mine["workflowExtendedInfo"]["originalStartTime"] == "2026-11-22T01:50:34.114770173Z"


def test_server_describe_fills_in_what_history_cannot_know() -> None:
    label = "activity_heartbeat/checkpoints/002.json"
    server = _server(label)
    mine = describe(_run(label), server_describe=server)
    activity = mine["pendingActivities"][0]
    assert activity["state"] == server["pendingActivities"][0]["state"]
    assert any(f.startswith("pendingActivities[1].") for f in mine["runhistory"]["fromServer"])
    assert mine["runhistory"]["mismatches"] == []
    assert mine["runhistory"]["stateTransitions"]["server"] == "5"


def test_a_disagreeing_server_describe_is_reported() -> None:
    label = "one_activity_eager/history.json"
    server = json.loads(json.dumps(_server(label)))
    server["workflowExecutionInfo"]["historyLength"] = "12"
    mine = describe(_run(label), server_describe=server)
    assert mine["runhistory"]["mismatches"] == ["workflowExecutionInfo.historyLength"]
    assert mine["workflowExecutionInfo"]["historyLength"] == "11"

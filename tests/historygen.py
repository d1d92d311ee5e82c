"""Random LEGAL Temporal histories, built by simulating a Temporal server one transaction at a time.

`legal_histories()` is a hypothesis strategy of canonical proto3 JSON histories
(`{"events": [...]}`, enum names with their prefix, int64 values as strings, defaults omitted).
`random_history(seed)` builds one from a seed, without hypothesis.

The simulation follows ../shared/docs/temporal-semantics.md §1-§2: it keeps the server's view of
every entity (activities, timers, children, external requests, Nexus operations, updates, the
workflow task) and only ever does what the server would do next:

- start: STARTED + WFT_SCHEDULED; first-task backoff or a child run (STARTED alone, the first
  WFT_SCHEDULED later, I15/I16); signal-with-start; eager start (STARTED, SCHEDULED, STARTED);
- a workflow task is started in its own transaction; its completion writes WFT_COMPLETED, then the
  command and update events carrying its id (I6), a close command last (I3), then the flushed
  buffer (I7, I9), then the next WFT_SCHEDULED (and WFT_STARTED when the worker asks inline);
- failures and timeouts of a workflow task (I10): attempt 1 is written; later attempts write
  nothing; the completion of attempt N writes [SCHEDULED(N), STARTED] first; a history may end
  with a taskId-less tail [SCHEDULED(N)] or [SCHEDULED(N), STARTED] (I13); new events convert a
  pending transient task to a normal one;
- server events: deferred ACTIVITY_TASK_STARTED written with, and right before, its terminal event
  (I11), timers firing (several in one transaction), child started/closed, external results,
  Nexus started/closed/cancel results, signals, one cancel request (I17), pause/unpause,
  options updated and time skipping (workerMayIgnore), terminate and run timeout (with a forced
  WFT_FAILED first when a task is in flight, I5), reset (WFT_FAILED(RESET_WORKFLOW) with
  reapplied signals and UPDATE_ADMITTED, I14), speculative update tasks (I12);
- buffering (I9): while a workflow task is in flight server events are held and written after the
  task's close event and its command events, reordered as in I7 (completion events last);
  cancelling a timer whose TIMER_FIRED is held drops that event (I18); cancelling an activity
  whose result is held still writes the cancel request first (I19).

Event ids run 1..n; task ids are consecutive within a transaction with a gap between
transactions (Rule T, §3.3). Structural choices come from the chooser (hypothesis draws, so they
shrink); payloads, names, ids and times come from a seeded `random.Random`.
"""

from __future__ import annotations

import base64
import json
import os
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

__all__ = [
    "LONG",
    "Chooser",
    "DrawChooser",
    "RandomChooser",
    "Sim",
    "hsettings",
    "legal_histories",
    "random_history",
    "rfc3339",
]

Json = dict[str, Any]
T = TypeVar("T")

# --- hypothesis settings ---------------------------------------------------------------------

LONG = os.environ.get("HYPOTHESIS_PROFILE") == "long"
_CHECKS = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]
settings.register_profile(
    "ci", deadline=None, max_examples=50, database=None, suppress_health_check=_CHECKS
)
settings.register_profile("long", deadline=None, max_examples=2000, suppress_health_check=_CHECKS)


def hsettings(ci_examples: int, long_examples: int | None = None) -> settings:
    """Settings for one property: `ci_examples` normally (the whole suite stays well under a
    minute), many more with HYPOTHESIS_PROFILE=long."""
    if LONG:
        return settings(
            settings.get_profile("long"), max_examples=long_examples or 40 * ci_examples
        )
    return settings(settings.get_profile("ci"), max_examples=ci_examples)


# --- choices ---------------------------------------------------------------------------------


class Chooser(Protocol):
    """Where the simulation's structural decisions come from."""

    def pick(self, options: Sequence[T]) -> T: ...

    def chance(self, percent: int) -> bool: ...

    def between(self, lo: int, hi: int) -> int: ...


class RandomChooser:
    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def pick(self, options: Sequence[T]) -> T:
        return options[self._rng.randrange(len(options))]

    def chance(self, percent: int) -> bool:
        return self._rng.randrange(100) < percent

    def between(self, lo: int, hi: int) -> int:
        return self._rng.randint(lo, hi)


class DrawChooser:
    """Hypothesis draws: the first option, `False` and `lo` are the simplest (shrink targets)."""

    def __init__(self, draw: Callable[[st.SearchStrategy[Any]], Any]) -> None:
        self._draw = draw

    def pick(self, options: Sequence[T]) -> T:
        index: int = self._draw(st.integers(0, len(options) - 1))
        return options[index]

    def chance(self, percent: int) -> bool:
        roll: int = self._draw(st.integers(0, 99))
        return roll >= 100 - percent

    def between(self, lo: int, hi: int) -> int:
        value: int = self._draw(st.integers(lo, hi))
        return value


# --- JSON value helpers ----------------------------------------------------------------------

_JSON_PLAIN = base64.b64encode(b"json/plain").decode()
_T0_NS = 1_795_000_000 * 10**9  # 2026-11-18
P = "EVENT_TYPE_"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def rfc3339(ns: int) -> str:
    """Canonical proto3 JSON of a timestamp: 0, 3, 6 or 9 fractional digits."""
    seconds, nanos = divmod(ns, 10**9)
    head = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if nanos == 0:
        return head + "Z"
    if nanos % 1_000_000 == 0:
        return f"{head}.{nanos // 1_000_000:03d}Z"
    if nanos % 1_000 == 0:
        return f"{head}.{nanos // 1_000:06d}Z"
    return f"{head}.{nanos:09d}Z"


def _duration(ns: int) -> str:
    """Canonical proto3 JSON of a duration, e.g. "10s", "0.500s", "1.000250s"."""
    seconds, nanos = divmod(ns, 10**9)
    if nanos == 0:
        return f"{seconds}s"
    if nanos % 1_000_000 == 0:
        return f"{seconds}.{nanos // 1_000_000:03d}s"
    if nanos % 1_000 == 0:
        return f"{seconds}.{nanos // 1_000:06d}s"
    return f"{seconds}.{nanos:09d}s"


def payload(value: Any) -> Json:
    data = json.dumps(value, separators=(",", ":")).encode()
    return {"metadata": {"encoding": _JSON_PLAIN}, "data": _b64(data)}


def payloads(*values: Any) -> Json:
    return {"payloads": [payload(v) for v in values]}


_STACK = (
    '  File "/srv/app/workflows.py", line {line}, in {fn}\n    raise ApplicationError(message)\n'
)


def _app_failure(rng: random.Random, message: str, type_name: str, *, final: bool = False) -> Json:
    info: Json = {"type": type_name}
    if final:
        info["nonRetryable"] = True
    if rng.random() < 0.3:
        info["details"] = payloads({"detail": rng.randint(1, 9)})
    failure: Json = {"message": message, "applicationFailureInfo": info}
    if rng.random() < 0.6:
        failure["stackTrace"] = _STACK.format(line=rng.randint(10, 400), fn="run")
    return failure


def _timeout_failure(kind: str, what: str) -> Json:
    pretty = "".join(p.capitalize() for p in kind.split("_"))
    return {
        "message": f"{what} {pretty} timeout",
        "source": "Server",
        "timeoutFailureInfo": {"timeoutType": f"TIMEOUT_TYPE_{kind}"},
    }


# --- the server's view of the entities ---------------------------------------------------------


@dataclass(eq=False)
class _Activity:
    scheduled: int
    activity_id: str
    activity_type: str
    scheduled_ns: int
    cancel_requested: int = 0  # id of its ACTIVITY_TASK_CANCEL_REQUESTED
    started: bool = False  # a worker holds it (invisible in history, I11)
    finishing: bool = False  # its terminal event is held in the buffer
    started_event: int = 0  # id of its ACTIVITY_TASK_STARTED once written


@dataclass(eq=False)
class _Timer:
    timer_id: str
    started: int
    firing: bool = False  # TIMER_FIRED is held in the buffer


@dataclass(eq=False)
class _Child:
    initiated: int
    workflow_id: str
    workflow_type: str
    run_id: str
    started: bool = False  # the server knows it started (its event may still be held)
    started_event: int = 0
    finishing: bool = False


@dataclass(eq=False)
class _External:
    initiated: int
    kind: str  # "signal" | "cancel"
    workflow_id: str
    run_id: str
    resolving: bool = False


@dataclass(eq=False)
class _Nexus:
    scheduled: int
    endpoint: str
    service: str
    operation: str
    request_id: str
    token: str
    started: bool = False
    finishing: bool = False
    cancel_requested: int = 0
    cancel_resolved: bool = False


@dataclass(eq=False)
class _Update:
    update_id: str
    name: str
    accepted: int = 0
    admitted: bool = False


@dataclass(eq=False)
class _Held:
    """One buffered arrival (or a same-transaction server event), written when flushed."""

    completion: bool  # reordered after the others when flushed (I7 step 4)
    trigger: bool  # makes the server schedule a workflow task (§1 notes)
    emit: Callable[[], None]
    timer: _Timer | None = None  # for I18


_WFT_FAIL_CAUSES = (
    "WORKFLOW_TASK_FAILED_CAUSE_WORKFLOW_WORKER_UNHANDLED_FAILURE",
    "WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR",
    "WORKFLOW_TASK_FAILED_CAUSE_SCHEDULE_ACTIVITY_DUPLICATE_ID",
    "WORKFLOW_TASK_FAILED_CAUSE_START_TIMER_DUPLICATE_ID",
    "WORKFLOW_TASK_FAILED_CAUSE_BAD_SCHEDULE_ACTIVITY_ATTRIBUTES",
    "WORKFLOW_TASK_FAILED_CAUSE_BAD_SEARCH_ATTRIBUTES",
)
_NAMESPACE = "default"
_NOT_FOUND = "EXTERNAL_WORKFLOW_EXECUTION_NOT_FOUND"
_PAUSE_CAUSE = "WORKFLOW_TASK_FAILED_CAUSE_WORKFLOW_PAUSE_REQUESTED_BEFORE_TASK_STARTED"


class _Done(Exception):
    """The history is complete (closed, or ended with a transient tail)."""


@dataclass
class Sim:
    """One simulated run. `run()` returns the history as canonical JSON."""

    choose: Chooser
    rng: random.Random
    max_steps: int = 30
    events: list[Json] = field(default_factory=list)

    def __post_init__(self) -> None:
        r = self.rng
        self.now = _T0_NS + r.randrange(10**15)
        self.next_task = 1_048_576 + r.randrange(10**6)
        self.workflow_id = f"wf-{r.randrange(10**6):06d}"
        self.run_id = str(uuid.UUID(int=r.getrandbits(128), version=4))
        self.task_queue = r.choice(("orders", "billing", "default-tq", "etl"))
        self.sticky_queue = f"{self.task_queue}-worker-{r.getrandbits(64):016x}"
        self.build_id = f"{r.getrandbits(128):032x}"
        self.namespace_id = str(uuid.UUID(int=r.getrandbits(128), version=4))
        self.worker = f"{r.randint(1000, 99999)}@worker-{r.randint(1, 9)}"
        self.wft_timeout = r.choice((10, 10, 5, 20))
        self.size = 300
        # run
        self.run = "RUNNING"  # RUNNING | PAUSED | CLOSED
        self.cancel_requested = False
        # workflow task: none | backoff | scheduled | started | transient | converted
        self.wft = "none"
        self.wft_scheduled = 0
        self.wft_started = 0
        self.wft_attempt = 1
        self.sticky = False  # the current WFT_SCHEDULED is on the sticky queue
        self.worker_sticky = False  # a worker has completed a task: later tasks go sticky
        self.buffer: list[_Held] = []
        self.pause_held = False  # a PAUSED event waits in the buffer
        # entities, by their key
        self.activities: dict[int, _Activity] = {}
        self.closed_activity_ids: list[str] = []
        self.timers: dict[str, _Timer] = {}
        self.children: dict[int, _Child] = {}
        self.externals: dict[int, _External] = {}
        self.nexus: dict[int, _Nexus] = {}
        self.updates: dict[str, _Update] = {}
        self.counter = 0
        self.in_txn = False

    # --- writing -------------------------------------------------------------------------

    def _id(self) -> int:
        self.counter += 1
        return self.counter

    def _tick(self, lo_ms: float = 1, hi_ms: float = 2000) -> int:
        self.now += int(self.rng.uniform(lo_ms, hi_ms) * 1_000_000) + self.rng.randrange(1000)
        return self.now

    def _begin(self, *, tick: bool = True) -> None:
        """A new transaction: later in time, task ids after a gap (Rule T)."""
        if tick:
            self._tick()
        self.next_task += self.rng.randint(1, 12)

    def write(
        self,
        etype: str,
        attrs: Json,
        *,
        at: int | None = None,
        ignorable: bool = False,
        durable: bool = True,
        extra: Json | None = None,
    ) -> int:
        """Append one event of the current transaction and return its id."""
        event_id = len(self.events) + 1
        if at is None:
            self.now += self.rng.randint(2_000, 90_000)
            at = self.now
        event: Json = {"eventId": str(event_id), "eventTime": rfc3339(at), "eventType": P + etype}
        if durable:
            event["taskId"] = str(self.next_task)
            self.next_task += 1
        key = "".join(w.capitalize() for w in etype.lower().split("_"))
        event[key[0].lower() + key[1:] + "EventAttributes"] = attrs
        if ignorable:
            event["workerMayIgnore"] = True
        if extra:
            event.update(extra)
        self.events.append(event)
        self.size += 90 + 40 * len(attrs)
        return event_id

    # --- running ---------------------------------------------------------------------------

    def run_sim(self) -> Json:
        try:
            self._start()
            for _ in range(self.max_steps):
                self._step()
            self._finish()
        except _Done:
            pass
        return {"events": self.events}

    def _finish(self) -> None:
        """Out of steps: leave the run open, or end it as an operator would."""
        if self.run == "CLOSED":
            return
        ending = self.choose.pick(("open", "terminate", "timeout", "tail"))
        if ending == "terminate":
            self._terminate(timed_out=False)
        elif ending == "timeout":
            self._terminate(timed_out=True)
        elif ending == "tail" and self.wft == "transient":
            self._transient_tail()

    def _step(self) -> None:
        actions = self._actions()
        name = self.choose.pick(actions)
        getattr(self, "_do_" + name)()

    def _actions(self) -> list[str]:
        """What can happen next, weighted by repetition; the first entry is the simplest."""
        w = self.wft
        acts: list[str] = []
        if self.run == "PAUSED":
            acts += ["unpause"] * 3 + self._server_actions()
        elif w == "backoff":
            acts += ["first_wft"] * 4
        elif w == "scheduled":
            acts += ["start_wft"] * 8 + self._server_actions() + ["pause"]
            if self.sticky:
                acts.append("sticky_timeout")
        elif w == "started":
            acts += ["complete"] * 12 + self._server_actions() * 2
            acts += ["fail_wft", "timeout_wft"]
            if not self.buffer:
                acts.append("reset")
            if not self.pause_held:
                acts.append("pause")
        elif w == "transient":
            acts += ["transient_complete"] * 4 + ["transient_fail", "transient_tail"]
            acts += self._server_actions()
        elif w == "converted":
            acts += ["start_converted"] * 4 + self._server_actions()
        else:  # none
            acts += self._server_actions() * 2 + ["speculative_update", "pause"]
        return acts * 5 + ["terminate", "run_timeout"]

    def _server_actions(self) -> list[str]:
        acts = ["signal"] * 2 + ["options_updated", "time_skipping"]
        if not self.cancel_requested:
            acts.append("cancel_request")
        if any(not a.finishing for a in self.activities.values()):
            acts += ["activity_result"] * 4
        if any(not t.firing for t in self.timers.values()):
            acts += ["timers_fire"] * 3
        if any(not c.finishing for c in self.children.values()):
            acts += ["child_progress"] * 3
        if any(not x.resolving for x in self.externals.values()):
            acts += ["external_result"] * 2
        if any(self._nexus_moves(op) for op in self.nexus.values()):
            acts += ["nexus_progress"] * 3
        return acts

    # --- start -----------------------------------------------------------------------------

    def _started_attrs(self, *, backoff_ns: int = 0, parent: bool = False) -> Json:
        r = self.rng
        attrs: Json = {
            "workflowType": {"name": r.choice(("OrderFlow", "Billing", "Etl", "Saga"))},
            "taskQueue": {"name": self.task_queue, "kind": "TASK_QUEUE_KIND_NORMAL"},
        }
        if parent:
            parent_run = str(uuid.UUID(int=r.getrandbits(128), version=4))
            attrs["parentWorkflowNamespace"] = _NAMESPACE
            attrs["parentWorkflowExecution"] = {"workflowId": "parent-wf", "runId": parent_run}
            attrs["parentInitiatedEventId"] = str(r.randint(5, 40))
            attrs["parentWorkflowNamespaceId"] = self.namespace_id
            attrs["rootWorkflowExecution"] = {"workflowId": "parent-wf", "runId": parent_run}
            attrs["header"] = {}
            attrs["workflowRunTimeout"] = "0s"
        if r.random() < 0.8:
            attrs["input"] = payloads(*(r.randint(0, 99) for _ in range(r.randint(1, 2))))
        if r.random() < 0.2:
            attrs["workflowExecutionTimeout"] = "3600s"
            attrs["workflowRunTimeout"] = "3600s"
            attrs["workflowExecutionExpirationTime"] = rfc3339(self.now + 3600 * 10**9)
        attrs["workflowTaskTimeout"] = f"{self.wft_timeout}s"
        attrs["originalExecutionRunId"] = self.run_id
        if not parent:
            attrs["identity"] = "client@host"
        attrs["firstExecutionRunId"] = self.run_id
        attrs["attempt"] = 1
        attrs["firstWorkflowTaskBackoff"] = _duration(backoff_ns)
        if r.random() < 0.2:
            attrs["memo"] = {"fields": {"owner": payload("team-a")}}
        attrs["workflowId"] = self.workflow_id
        attrs["priority"] = {}
        return attrs

    def _start(self) -> None:
        kind = self.choose.pick(("normal", "eager", "signal_with_start", "backoff", "child"))
        self._begin()
        if kind == "backoff":
            backoff = self.rng.randrange(1, 3 * 10**9)
            self.write("WORKFLOW_EXECUTION_STARTED", self._started_attrs(backoff_ns=backoff))
            self.wft = "backoff"
            return
        if kind == "child":  # I16: the parent schedules the child's first task later
            self.write("WORKFLOW_EXECUTION_STARTED", self._started_attrs(parent=True))
            self.wft = "backoff"
            return
        attrs = self._started_attrs()
        if kind == "eager":
            attrs["eagerExecutionAccepted"] = True
        self.write("WORKFLOW_EXECUTION_STARTED", attrs)
        if kind == "signal_with_start":
            self.write("WORKFLOW_EXECUTION_SIGNALED", self._signal_attrs())
        self._schedule_wft()
        if kind == "eager":
            self.wft_started = self.write(
                "WORKFLOW_TASK_STARTED",
                {
                    "scheduledEventId": str(self.wft_scheduled),
                    "identity": "client@host",
                    "requestId": self._uuid(),
                },
            )
            self.wft = "started"

    # --- the workflow task -----------------------------------------------------------------

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _queue(self, sticky: bool) -> Json:
        if sticky:
            return {
                "name": self.sticky_queue,
                "kind": "TASK_QUEUE_KIND_STICKY",
                "normalName": self.task_queue,
            }
        return {"name": self.task_queue, "kind": "TASK_QUEUE_KIND_NORMAL"}

    def _schedule_wft(self, attempt: int = 1, *, durable: bool = True) -> int:
        sticky = self.worker_sticky and attempt == 1
        event_id = self.write(
            "WORKFLOW_TASK_SCHEDULED",
            {
                "taskQueue": self._queue(sticky),
                "startToCloseTimeout": f"{self.wft_timeout}s",
                "attempt": attempt,
            },
            durable=durable,
        )
        self.wft, self.wft_scheduled, self.sticky = "scheduled", event_id, sticky
        return event_id

    def _start_wft_event(self, *, inline: bool = False, durable: bool = True) -> int:
        attrs: Json = {
            "scheduledEventId": str(self.wft_scheduled),
            "identity": self.worker,
            "requestId": "request-from-RespondWorkflowTaskCompleted" if inline else self._uuid(),
            "historySizeBytes": str(self.size),
        }
        if durable:
            attrs["workerVersion"] = {"buildId": self.build_id}
        self.wft_started = self.write("WORKFLOW_TASK_STARTED", attrs, durable=durable)
        self.wft = "started"
        return self.wft_started

    def _do_first_wft(self) -> None:
        self._begin()
        self._schedule_wft()

    def _do_start_wft(self) -> None:
        self._begin()
        self._start_wft_event()

    def _do_start_converted(self) -> None:
        """A transient task converted to a normal one by new events: its schedule event
        (attempt 1) is written when it starts (I10)."""
        self._begin()
        self.worker_sticky = False
        self._schedule_wft()
        self._start_wft_event()

    def _do_sticky_timeout(self) -> None:
        """A sticky task not picked up in time goes back to the normal queue (§2.3 WFT)."""
        self._begin()
        self.write(
            "WORKFLOW_TASK_TIMED_OUT",
            {
                "scheduledEventId": str(self.wft_scheduled),
                "timeoutType": "TIMEOUT_TYPE_SCHEDULE_TO_START",
            },
        )
        self.worker_sticky = False
        self._schedule_wft()

    def _wft_closed_with_failure(self) -> None:
        """After WFT_FAILED / WFT_TIMED_OUT of attempt 1: flush; a normal task follows only if
        something was buffered, else a transient attempt 2 is pending (I10)."""
        self.worker_sticky = False
        held = self._flush()
        if self.run == "PAUSED":  # no task is scheduled while paused; UNPAUSED schedules one
            self.wft = "none"
        elif held:
            self._schedule_wft()
        else:
            self.wft, self.wft_attempt = "transient", 2

    def _do_fail_wft(self) -> None:
        self._begin()
        cause = (
            "WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND"
            if self.buffer and self.choose.chance(50)
            else self.rng.choice(_WFT_FAIL_CAUSES)
        )
        if cause.endswith("UNHANDLED_COMMAND"):
            failure: Json = {"message": "UnhandledCommand", "serverFailureInfo": {}}
        else:
            failure = _app_failure(self.rng, "workflow task failed", "WorkflowError")
        self.write(
            "WORKFLOW_TASK_FAILED",
            {
                "scheduledEventId": str(self.wft_scheduled),
                "startedEventId": str(self.wft_started),
                "cause": cause,
                "failure": failure,
                "identity": self.worker,
            },
        )
        self._wft_closed_with_failure()

    def _do_timeout_wft(self) -> None:
        self._begin()
        self.write(
            "WORKFLOW_TASK_TIMED_OUT",
            {
                "scheduledEventId": str(self.wft_scheduled),
                "startedEventId": str(self.wft_started),
                "timeoutType": "TIMEOUT_TYPE_START_TO_CLOSE",
            },
        )
        self._wft_closed_with_failure()

    def _do_transient_fail(self) -> None:
        """Attempt N fails or times out again: nothing is written (I10)."""
        self._tick(100, 5000)
        self.wft_attempt = min(self.wft_attempt + 1, 9)

    def _transient_tail(self) -> None:
        """GetWorkflowExecutionHistory's taskId-less tail for a pending transient task (I13)."""
        self._tick()
        self._schedule_wft(self.wft_attempt, durable=False)
        if self.choose.chance(50):
            self._start_wft_event(durable=False)
        raise _Done

    def _do_transient_tail(self) -> None:
        self._transient_tail()

    def _do_transient_complete(self) -> None:
        self._complete(prefix_attempt=self.wft_attempt)

    def _do_speculative_update(self) -> None:
        """An update admitted with no task pending runs on a speculative task: nothing is
        written unless the worker accepts it, then SCHEDULED, STARTED, COMPLETED, ACCEPTED...
        all in the completion transaction (I12)."""
        self._complete(prefix_attempt=1, speculative=True)

    def _do_complete(self) -> None:
        self._complete(prefix_attempt=None)

    def _do_reset(self) -> None:
        """The run is a reset run: the reset fails the in-flight task, reapplies signals and
        updates, and schedules a new task (I14)."""
        self._begin()
        base_run = self.run_id
        self.run_id = self._uuid()
        self.write(
            "WORKFLOW_TASK_FAILED",
            {
                "scheduledEventId": str(self.wft_scheduled),
                "startedEventId": str(self.wft_started),
                "cause": "WORKFLOW_TASK_FAILED_CAUSE_RESET_WORKFLOW",
                "failure": {"message": "reset by operator", "resetWorkflowFailureInfo": {}},
                "identity": "history-service",
                "baseRunId": base_run,
                "newRunId": self.run_id,
            },
        )
        for _ in range(self.choose.between(0, 2)):
            if self.choose.chance(50):
                self.write("WORKFLOW_EXECUTION_SIGNALED", self._signal_attrs())
            else:
                update = self._new_update()
                update.admitted = True
                self.write(
                    "WORKFLOW_EXECUTION_UPDATE_ADMITTED",
                    {
                        "request": self._update_request(update),
                        "origin": "UPDATE_ADMITTED_EVENT_ORIGIN_REAPPLY",
                    },
                )
        self.worker_sticky = False
        self._schedule_wft()

    # --- the completion transaction (I6, I7) ----------------------------------------------

    def _complete(self, *, prefix_attempt: int | None, speculative: bool = False) -> None:
        self._begin()
        if prefix_attempt is not None:
            if prefix_attempt == 1 and not speculative:
                raise AssertionError("only transient or speculative tasks write a prefix")
            self._schedule_wft(prefix_attempt)
            self._start_wft_event()
        sched, started = self.wft_scheduled, self.wft_started
        completed = self.write(
            "WORKFLOW_TASK_COMPLETED",
            {
                "scheduledEventId": str(sched),
                "startedEventId": str(started),
                "identity": self.worker,
                "workerVersion": {"buildId": self.build_id},
                "sdkMetadata": (
                    {
                        "coreUsedFlags": [1, 2, 3],
                        "sdkName": "temporal-python",
                        "sdkVersion": "1.35.0",
                    }
                    if len(self.events) < 6
                    else {}
                ),
                "meteringMetadata": {},
            },
        )
        self.worker_sticky = True
        same_txn: list[_Held] = []
        if speculative:
            self._cmd_accept_update(completed, sched, same_txn)
        for _ in range(self.choose.between(0, 4)):
            kinds = self._command_kinds()
            getattr(self, "_cmd_" + self.choose.pick(kinds))(completed, sched, same_txn)
        if not self.buffer and not same_txn and self.choose.chance(8):
            self._close_command(completed)
            raise _Done
        held = self._flush(same_txn)
        if self.run == "PAUSED":
            self.wft = "none"
        elif any(h.trigger for h in held) or self.choose.chance(8):
            self._schedule_wft()
            if self.choose.chance(25):  # return_new_workflow_task / WFT heartbeat
                self._start_wft_event(inline=True)
        else:
            self.wft = "none"

    def _command_kinds(self) -> list[str]:
        kinds = ["activity"] * 3 + ["timer"] * 2 + ["marker", "upsert", "memo"]
        kinds += ["child", "signal_external", "cancel_external", "nexus", "accept_update"]
        if any(not a.cancel_requested for a in self.activities.values()):
            kinds += ["cancel_activity"] * 2
        if any(not a.cancel_requested and a.finishing for a in self.activities.values()):
            kinds += ["cancel_activity"] * 4  # I19: cancel what has just finished
        if self.timers:
            kinds += ["cancel_timer"] * 2
        if any(not op.cancel_requested and not op.finishing for op in self.nexus.values()):
            kinds += ["cancel_nexus"] * 3
        if any(u.accepted == 0 and u.admitted for u in self.updates.values()):
            kinds.append("accept_update")
        if any(u.accepted for u in self.updates.values()):
            kinds += ["complete_update"] * 2
        return kinds

    def _close_command(self, completed: int) -> None:
        r = self.rng
        kinds = ["complete", "complete", "fail", "continue_as_new"]
        if self.cancel_requested:
            kinds += ["cancel"] * 3
        kind = self.choose.pick(kinds)
        ref = str(completed)
        if kind == "complete":
            attrs: Json = {"workflowTaskCompletedEventId": ref}
            if r.random() < 0.8:
                attrs = {"result": payloads(f"done-{r.randint(1, 99)}"), **attrs}
            self.write("WORKFLOW_EXECUTION_COMPLETED", attrs)
        elif kind == "fail":
            self.write(
                "WORKFLOW_EXECUTION_FAILED",
                {
                    "failure": _app_failure(r, "workflow failed", "BusinessError", final=True),
                    "retryState": "RETRY_STATE_RETRY_POLICY_NOT_SET",
                    "workflowTaskCompletedEventId": ref,
                },
            )
        elif kind == "cancel":
            self.write("WORKFLOW_EXECUTION_CANCELED", {"workflowTaskCompletedEventId": ref})
        else:
            self.write(
                "WORKFLOW_EXECUTION_CONTINUED_AS_NEW",
                {
                    "newExecutionRunId": self._uuid(),
                    "workflowType": {"name": "OrderFlow"},
                    "taskQueue": {"name": self.task_queue, "kind": "TASK_QUEUE_KIND_NORMAL"},
                    "input": payloads(r.randint(0, 9)),
                    "workflowRunTimeout": "0s",
                    "workflowTaskTimeout": f"{self.wft_timeout}s",
                    "workflowTaskCompletedEventId": ref,
                    "inheritBuildId": True,
                },
            )
        self.run = "CLOSED"

    def _cmd_activity(self, completed: int, sched: int, same: list[_Held]) -> None:
        r = self.rng
        pending = {a.activity_id for a in self.activities.values()}
        reusable = [i for i in self.closed_activity_ids if i not in pending]
        # ids may be reused once the earlier activity has closed (I17)
        activity_id = r.choice(reusable) if reusable and r.random() < 0.3 else str(self._id())
        activity_type = r.choice(("charge_card", "send_email", "fetch", "compress"))
        attempts = r.choice((0, 1, 3, 10))
        retry: Json = {
            "initialInterval": "1s",
            "backoffCoefficient": 2.0,
            "maximumInterval": "100s",
        }
        if attempts:
            retry["maximumAttempts"] = attempts
        attrs: Json = {
            "activityId": activity_id,
            "activityType": {"name": activity_type},
            "taskQueue": {"name": self.task_queue, "kind": "TASK_QUEUE_KIND_NORMAL"},
            "header": {},
        }
        if r.random() < 0.8:
            attrs["input"] = payloads(activity_type, r.randint(1, 999))
        attrs.update(
            scheduleToCloseTimeout=r.choice(("0s", "600s")),
            scheduleToStartTimeout=r.choice(("0s", "60s")),
            startToCloseTimeout=r.choice(("5s", "30s", "0.500s")),
            heartbeatTimeout=r.choice(("0s", "1s")),
            workflowTaskCompletedEventId=str(completed),
            retryPolicy=retry,
            useWorkflowBuildId=True,
            priority={},
        )
        event_id = self.write("ACTIVITY_TASK_SCHEDULED", attrs)
        self.activities[event_id] = _Activity(event_id, activity_id, activity_type, self.now)

    def _cmd_cancel_activity(self, completed: int, sched: int, same: list[_Held]) -> None:
        candidates = [a for a in self.activities.values() if not a.cancel_requested]
        held = [a for a in candidates if a.finishing]
        act = self.choose.pick(held if held and self.choose.chance(50) else candidates)
        act.cancel_requested = self.write(
            "ACTIVITY_TASK_CANCEL_REQUESTED",
            {
                "scheduledEventId": str(act.scheduled),
                "workflowTaskCompletedEventId": str(completed),
            },
        )
        if act.finishing:
            return  # I19: its held result follows in the flush
        if not act.started and self.choose.chance(50):
            act.started = True  # a worker holds it: it stays pending until the worker answers
        if act.started:
            return

        def canceled() -> None:  # never started: canceled in the same transaction
            attrs: Json = {}
            if self.rng.random() < 0.5:
                attrs["details"] = payloads("ACTIVITY_ID_NOT_STARTED")
            attrs["latestCancelRequestedEventId"] = str(act.cancel_requested)
            attrs["scheduledEventId"] = str(act.scheduled)
            attrs["identity"] = self.worker
            self.write("ACTIVITY_TASK_CANCELED", attrs)
            self._close_activity(act)

        act.finishing = True
        same.append(_Held(True, True, canceled))

    def _close_activity(self, act: _Activity) -> None:
        del self.activities[act.scheduled]
        self.closed_activity_ids.append(act.activity_id)

    def _cmd_timer(self, completed: int, sched: int, same: list[_Held]) -> None:
        timer_id = str(self._id())
        ms = self.rng.choice((500, 1000, 60_000, 3_600_000))
        started = self.write(
            "TIMER_STARTED",
            {
                "timerId": timer_id,
                "startToFireTimeout": _duration(ms * 1_000_000),
                "workflowTaskCompletedEventId": str(completed),
            },
        )
        self.timers[timer_id] = _Timer(timer_id, started)

    def _cmd_cancel_timer(self, completed: int, sched: int, same: list[_Held]) -> None:
        timer = self.choose.pick(list(self.timers.values()))
        if timer.firing:  # I18: the held TIMER_FIRED is dropped
            self.buffer = [h for h in self.buffer if h.timer is not timer]
        self.write(
            "TIMER_CANCELED",
            {
                "timerId": timer.timer_id,
                "startedEventId": str(timer.started),
                "workflowTaskCompletedEventId": str(completed),
                "identity": self.worker,
            },
        )
        del self.timers[timer.timer_id]

    def _cmd_marker(self, completed: int, sched: int, same: list[_Held]) -> None:
        r = self.rng
        if r.random() < 0.5:
            name = "core_local_activity"
            details: Json = {
                "result": payloads(f"la-{r.randint(1, 9)}"),
                "data": payloads({"seq": r.randint(1, 9), "attempt": 1}),
            }
        else:
            name = "core_patch"
            details = {"patch_data": payloads({"id": "patch-1", "deprecated": False})}
        self.write(
            "MARKER_RECORDED",
            {
                "markerName": name,
                "details": details,
                "workflowTaskCompletedEventId": str(completed),
            },
        )

    def _cmd_upsert(self, completed: int, sched: int, same: list[_Held]) -> None:
        value = payload(["patch-1"])
        value["metadata"]["type"] = _b64(b"KeywordList")
        self.write(
            "UPSERT_WORKFLOW_SEARCH_ATTRIBUTES",
            {
                "workflowTaskCompletedEventId": str(completed),
                "searchAttributes": {"indexedFields": {"TemporalChangeVersion": value}},
            },
        )

    def _cmd_memo(self, completed: int, sched: int, same: list[_Held]) -> None:
        self.write(
            "WORKFLOW_PROPERTIES_MODIFIED",
            {
                "workflowTaskCompletedEventId": str(completed),
                "upsertedMemo": {"fields": {"stage": payload(self.rng.choice(("one", "two")))}},
            },
        )

    def _cmd_child(self, completed: int, sched: int, same: list[_Held]) -> None:
        r = self.rng
        child_id = f"{self.workflow_id}-child-{self._id()}"
        child_type = r.choice(("Waiter", "Worker"))
        initiated = self.write(
            "START_CHILD_WORKFLOW_EXECUTION_INITIATED",
            {
                "namespace": _NAMESPACE,
                "workflowId": child_id,
                "workflowType": {"name": child_type},
                "taskQueue": {"name": self.task_queue, "kind": "TASK_QUEUE_KIND_NORMAL"},
                "input": payloads("child-input"),
                "workflowRunTimeout": "0s",
                "workflowTaskTimeout": "10s",
                "parentClosePolicy": r.choice(
                    ("PARENT_CLOSE_POLICY_TERMINATE", "PARENT_CLOSE_POLICY_ABANDON")
                ),
                "workflowTaskCompletedEventId": str(completed),
                "workflowIdReusePolicy": "WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE",
                "header": {},
                "namespaceId": self.namespace_id,
                "inheritBuildId": True,
                "priority": {},
            },
        )
        self.children[initiated] = _Child(initiated, child_id, child_type, self._uuid())

    def _target(self) -> tuple[str, str, bool]:
        """An external workflow: one of the children (for a cancel: child_workflow_only) or
        another workflow."""
        started = [c for c in self.children.values() if c.started]
        if started and self.rng.random() < 0.5:
            child = self.rng.choice(started)
            return child.workflow_id, child.run_id, True
        return f"other-{self.rng.randint(1, 99)}", "", False

    def _cmd_signal_external(self, completed: int, sched: int, same: list[_Held]) -> None:
        workflow_id, run_id, _ = self._target()
        execution: Json = {"workflowId": workflow_id}
        if run_id:
            execution["runId"] = run_id
        initiated = self.write(
            "SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED",
            {
                "workflowTaskCompletedEventId": str(completed),
                "namespace": _NAMESPACE,
                "workflowExecution": execution,
                "signalName": "poke",
                "input": payloads("from parent"),
                "header": {},
                "namespaceId": self.namespace_id,
            },
        )
        self.externals[initiated] = _External(initiated, "signal", workflow_id, run_id)

    def _cmd_cancel_external(self, completed: int, sched: int, same: list[_Held]) -> None:
        workflow_id, run_id, child_only = self._target()
        execution: Json = {"workflowId": workflow_id}
        if run_id:
            execution["runId"] = run_id
        attrs: Json = {
            "workflowTaskCompletedEventId": str(completed),
            "namespace": _NAMESPACE,
            "workflowExecution": execution,
        }
        if child_only:
            attrs["childWorkflowOnly"] = True
        attrs["reason"] = "no longer needed"
        attrs["namespaceId"] = self.namespace_id
        initiated = self.write("REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED", attrs)
        self.externals[initiated] = _External(initiated, "cancel", workflow_id, run_id)

    def _cmd_nexus(self, completed: int, sched: int, same: list[_Held]) -> None:
        r = self.rng
        op = _Nexus(
            0,
            endpoint=r.choice(("payments-ep", "search-ep")),
            service="OrderService",
            operation=r.choice(("run_workflow", "echo_sync")),
            request_id=self._uuid(),
            token=_b64(json.dumps({"t": 1, "wid": f"handler-{r.randint(1, 999)}"}).encode()),
        )
        attrs: Json = {
            "endpoint": op.endpoint,
            "service": op.service,
            "operation": op.operation,
            "input": payload("nexus-input"),
        }
        if r.random() < 0.4:
            attrs["scheduleToCloseTimeout"] = "60s"
        attrs["workflowTaskCompletedEventId"] = str(completed)
        attrs["requestId"] = op.request_id
        attrs["endpointId"] = self._uuid()
        op.scheduled = self.write("NEXUS_OPERATION_SCHEDULED", attrs)
        self.nexus[op.scheduled] = op

    def _cmd_cancel_nexus(self, completed: int, sched: int, same: list[_Held]) -> None:
        ops = [op for op in self.nexus.values() if not op.cancel_requested and not op.finishing]
        op = self.choose.pick(ops)
        op.cancel_requested = self.write(
            "NEXUS_OPERATION_CANCEL_REQUESTED",
            {"scheduledEventId": str(op.scheduled), "workflowTaskCompletedEventId": str(completed)},
        )

    def _new_update(self) -> _Update:
        update = _Update(f"update-{self._id()}", self.rng.choice(("add", "set_stage")))
        self.updates[update.update_id] = update
        return update

    def _update_request(self, update: _Update) -> Json:
        return {
            "meta": {"updateId": update.update_id, "identity": "client@host"},
            "input": {"name": update.name, "args": payloads(self.rng.randint(1, 9))},
        }

    def _cmd_accept_update(self, completed: int, sched: int, same: list[_Held]) -> None:
        admitted = [u for u in self.updates.values() if u.admitted and not u.accepted]
        update = self.choose.pick(admitted) if admitted else self._new_update()
        update.accepted = self.write(
            "WORKFLOW_EXECUTION_UPDATE_ACCEPTED",
            {
                "protocolInstanceId": update.update_id,
                "acceptedRequestMessageId": f"{update.update_id}/request",
                "acceptedRequestSequencingEventId": str(sched),
                "acceptedRequest": self._update_request(update),
            },
        )
        if self.choose.chance(50):
            self._complete_update(update)

    def _cmd_complete_update(self, completed: int, sched: int, same: list[_Held]) -> None:
        self._complete_update(self.choose.pick([u for u in self.updates.values() if u.accepted]))

    def _complete_update(self, update: _Update) -> None:
        if self.rng.random() < 0.8:
            outcome: Json = {"success": payloads(f"{update.name} ok")}
        else:
            outcome = {"failure": _app_failure(self.rng, "update failed", "UpdateError")}
        self.write(
            "WORKFLOW_EXECUTION_UPDATE_COMPLETED",
            {
                "meta": {"updateId": update.update_id, "identity": "client@host"},
                "outcome": outcome,
                "acceptedEventId": str(update.accepted),
            },
        )
        del self.updates[update.update_id]

    # --- server events: held while a task is in flight (I9), else written now ----------------

    def _arrive(self, held: list[_Held]) -> None:
        """Server events that arrive together (one transaction of the server)."""
        if self.wft == "started":
            self.buffer += held
            return
        self._begin(tick=False)  # the arrival time was taken already
        for h in held:
            h.emit()
        trigger = any(h.trigger for h in held)
        if self.run == "PAUSED":
            return
        if self.wft == "none" and trigger:
            self._schedule_wft()
        elif self.wft == "transient":  # new events convert a transient task (I10)
            self.wft = "converted"

    def _flush(self, extra: Sequence[_Held] = ()) -> list[_Held]:
        """Write the held events, non-completion events first (I7 step 4)."""
        held = [*self.buffer, *extra]
        self.buffer = []
        for h in [h for h in held if not h.completion] + [h for h in held if h.completion]:
            h.emit()
        return held

    def _arrival_time(self) -> int:
        return self._tick(1, 800)

    def _signal_attrs(self) -> Json:
        r = self.rng
        attrs: Json = {"signalName": r.choice(("add", "approve", "finish"))}
        if r.random() < 0.8:
            attrs["input"] = payloads(f"sig-{r.randint(1, 999)}")
        if r.random() < 0.2:
            attrs["externalWorkflowExecution"] = {
                "workflowId": "sender-wf",
                "runId": self._uuid(),
            }
            attrs["identity"] = "history-service"
        else:
            attrs["identity"] = "client@host"
            attrs["requestId"] = self._uuid()
        return attrs

    def _do_signal(self) -> None:
        at = self._arrival_time()
        attrs = self._signal_attrs()
        self._arrive(
            [
                _Held(
                    False,
                    True,
                    lambda: void(self.write("WORKFLOW_EXECUTION_SIGNALED", attrs, at=at)),
                )
            ]
        )

    def _do_cancel_request(self) -> None:
        self.cancel_requested = True
        at = self._arrival_time()
        attrs: Json = {"identity": "client@host"}
        if self.rng.random() < 0.3:
            attrs = {
                "externalInitiatedEventId": str(self.rng.randint(5, 30)),
                "externalWorkflowExecution": {"workflowId": "parent-wf", "runId": self._uuid()},
                "identity": "history-service",
            }
        elif self.rng.random() < 0.3:
            attrs["cause"] = "requested by operator"
        self._arrive(
            [
                _Held(
                    False,
                    True,
                    lambda: void(self.write("WORKFLOW_EXECUTION_CANCEL_REQUESTED", attrs, at=at)),
                )
            ]
        )

    def _do_options_updated(self) -> None:
        at = self._arrival_time()
        attrs: Json = self.rng.choice(
            (
                {"versioningOverride": {"autoUpgrade": True}, "priority": {}},
                {"unsetVersioningOverride": True, "identity": "ops@host"},
                {"priority": {"priorityKey": self.rng.randint(1, 5)}, "identity": "ops@host"},
            )
        )
        self._arrive(
            [
                _Held(
                    False,
                    False,
                    lambda: void(
                        self.write(
                            "WORKFLOW_EXECUTION_OPTIONS_UPDATED", attrs, at=at, ignorable=True
                        )
                    ),
                )
            ]
        )

    def _do_time_skipping(self) -> None:
        at = self._arrival_time()
        attrs = {"targetTime": rfc3339(at + 60 * 10**9), "wallClockTime": rfc3339(at + 311)}
        self._arrive(
            [
                _Held(
                    False,
                    False,
                    lambda: void(
                        self.write(
                            "WORKFLOW_EXECUTION_TIME_SKIPPING_TRANSITIONED",
                            attrs,
                            at=at,
                            ignorable=True,
                        )
                    ),
                )
            ]
        )

    def _do_activity_result(self) -> None:
        act = self.choose.pick([a for a in self.activities.values() if not a.finishing])
        kinds = ["completed"] * 3 + ["failed", "timed_out"]
        if act.cancel_requested:
            kinds += ["canceled"] * 3
        if not act.started:
            kinds += ["timed_out_unstarted"] * 2
        kind = self.choose.pick(kinds)
        act.finishing = True
        r = self.rng
        end = self._arrival_time()
        held: list[_Held] = []
        if kind != "timed_out_unstarted":
            act.started = True
            attempt = 1 if r.random() < 0.6 else r.randint(2, 5)
            begin = r.randint(act.scheduled_ns, end - 1)

            def started() -> None:
                attrs: Json = {
                    "scheduledEventId": str(act.scheduled),
                    "identity": self.worker,
                    "requestId": self._uuid(),
                    "attempt": attempt,
                }
                if attempt > 1:
                    attrs["lastFailure"] = _app_failure(r, f"attempt {attempt - 1} failed", "Flaky")
                attrs["workerVersion"] = {"buildId": self.build_id}
                act.started_event = self.write("ACTIVITY_TASK_STARTED", attrs, at=begin)

            held.append(_Held(False, False, started))

        def terminal() -> None:
            refs: Json = {"scheduledEventId": str(act.scheduled)}
            if act.started_event:
                refs["startedEventId"] = str(act.started_event)
            if kind == "completed":
                attrs: Json = {"result": payloads(f"{act.activity_type}-ok"), **refs}
                attrs["identity"] = self.worker
                self.write("ACTIVITY_TASK_COMPLETED", attrs, at=end)
            elif kind == "failed":
                attrs = {"failure": _app_failure(r, "activity failed", "Boom", final=True), **refs}
                attrs["identity"] = self.worker
                attrs["retryState"] = r.choice(
                    ("RETRY_STATE_NON_RETRYABLE_FAILURE", "RETRY_STATE_MAXIMUM_ATTEMPTS_REACHED")
                )
                self.write("ACTIVITY_TASK_FAILED", attrs, at=end)
            elif kind == "canceled":
                attrs = {"details": payloads("canceled")} if r.random() < 0.5 else {}
                attrs["latestCancelRequestedEventId"] = str(act.cancel_requested)
                attrs.update(refs)
                attrs["identity"] = self.worker
                self.write("ACTIVITY_TASK_CANCELED", attrs, at=end)
            else:
                timeout = (
                    r.choice(("SCHEDULE_TO_START", "SCHEDULE_TO_CLOSE"))
                    if kind == "timed_out_unstarted"
                    else r.choice(("START_TO_CLOSE", "HEARTBEAT", "SCHEDULE_TO_CLOSE"))
                )
                attrs = {"failure": _timeout_failure(timeout, "activity"), **refs}
                attrs["retryState"] = (
                    "RETRY_STATE_TIMEOUT"
                    if timeout.startswith("SCHEDULE")
                    else "RETRY_STATE_MAXIMUM_ATTEMPTS_REACHED"
                )
                self.write("ACTIVITY_TASK_TIMED_OUT", attrs, at=end)
            self._close_activity(act)

        held.append(_Held(True, True, terminal))
        self._arrive(held)

    def _do_timers_fire(self) -> None:
        ready = [t for t in self.timers.values() if not t.firing]
        count = self.choose.between(1, min(3, len(ready)))
        at = self._arrival_time()
        held: list[_Held] = []
        for timer in ready[:count]:
            timer.firing = True

            def fired(timer: _Timer = timer) -> None:
                self.write(
                    "TIMER_FIRED",
                    {"timerId": timer.timer_id, "startedEventId": str(timer.started)},
                    at=at,
                )
                del self.timers[timer.timer_id]

            held.append(_Held(False, True, fired, timer))
        self._arrive(held)

    def _do_child_progress(self) -> None:
        child = self.choose.pick([c for c in self.children.values() if not c.finishing])
        at = self._arrival_time()
        execution = {"workflowId": child.workflow_id, "runId": child.run_id}
        common: Json = {"namespace": _NAMESPACE}
        if not child.started:
            if self.choose.chance(80):
                child.started = True

                def started() -> None:
                    child.started_event = self.write(
                        "CHILD_WORKFLOW_EXECUTION_STARTED",
                        {
                            **common,
                            "initiatedEventId": str(child.initiated),
                            "workflowExecution": execution,
                            "workflowType": {"name": child.workflow_type},
                            "header": {},
                            "namespaceId": self.namespace_id,
                        },
                        at=at,
                    )

                self._arrive([_Held(False, True, started)])
                return
            child.finishing = True

            def start_failed() -> None:
                self.write(
                    "START_CHILD_WORKFLOW_EXECUTION_FAILED",
                    {
                        **common,
                        "workflowId": child.workflow_id,
                        "workflowType": {"name": child.workflow_type},
                        "cause": "START_CHILD_WORKFLOW_EXECUTION_FAILED_CAUSE_"
                        + "WORKFLOW_ALREADY_EXISTS",
                        "initiatedEventId": str(child.initiated),
                        "namespaceId": self.namespace_id,
                    },
                    at=at,
                )
                del self.children[child.initiated]

            self._arrive([_Held(False, True, start_failed)])
            return
        child.finishing = True
        kind = self.choose.pick(("COMPLETED", "FAILED", "CANCELED", "TIMED_OUT", "TERMINATED"))

        def closed() -> None:
            attrs: Json = {}
            if kind == "COMPLETED":
                attrs["result"] = payloads("child done")
            elif kind == "FAILED":
                attrs["failure"] = _app_failure(self.rng, "child failed", "ChildError", final=True)
            elif kind == "CANCELED" and self.rng.random() < 0.5:
                attrs["details"] = payloads("bye")
            attrs.update(
                namespace=_NAMESPACE,
                workflowExecution=execution,
                workflowType={"name": child.workflow_type},
                initiatedEventId=str(child.initiated),
                startedEventId=str(child.started_event),
            )
            if kind == "FAILED":
                attrs["retryState"] = "RETRY_STATE_RETRY_POLICY_NOT_SET"
            elif kind == "TIMED_OUT":
                attrs["retryState"] = "RETRY_STATE_TIMEOUT"
            attrs["namespaceId"] = self.namespace_id
            self.write(f"CHILD_WORKFLOW_EXECUTION_{kind}", attrs, at=at)
            del self.children[child.initiated]

        self._arrive([_Held(True, True, closed)])

    def _do_external_result(self) -> None:
        ext = self.choose.pick([x for x in self.externals.values() if not x.resolving])
        ext.resolving = True
        ok = self.choose.chance(70)
        at = self._arrival_time()
        execution: Json = {"workflowId": ext.workflow_id}
        if ext.run_id:
            execution["runId"] = ext.run_id

        def result() -> None:
            ref = str(ext.initiated)
            if ok:
                etype = (
                    "EXTERNAL_WORKFLOW_EXECUTION_SIGNALED"
                    if ext.kind == "signal"
                    else "EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED"
                )
                attrs: Json = {
                    "initiatedEventId": ref,
                    "namespace": _NAMESPACE,
                    "workflowExecution": execution,
                    "namespaceId": self.namespace_id,
                }
            else:
                if ext.kind == "signal":
                    etype = "SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED"
                    cause = "SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED_CAUSE_" + _NOT_FOUND
                else:
                    etype = "REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED"
                    cause = "CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED_CAUSE_" + _NOT_FOUND
                attrs = {
                    "cause": cause,
                    "namespace": _NAMESPACE,
                    "workflowExecution": execution,
                    "initiatedEventId": ref,
                    "namespaceId": self.namespace_id,
                }
            self.write(etype, attrs, at=at)
            del self.externals[ext.initiated]

        self._arrive([_Held(False, True, result)])

    def _nexus_moves(self, op: _Nexus) -> bool:
        return not op.finishing

    def _do_nexus_progress(self) -> None:
        op = self.choose.pick([o for o in self.nexus.values() if self._nexus_moves(o)])
        moves = ["close"] * 2
        if not op.started:
            moves += ["start"] * 3
        if op.started and op.cancel_requested and not op.cancel_resolved:
            moves += ["cancel_result"] * 8
        move = self.choose.pick(moves)
        at = self._arrival_time()
        sched = str(op.scheduled)
        if move == "start":
            op.started = True

            def started() -> None:
                self.write(
                    "NEXUS_OPERATION_STARTED",
                    {
                        "scheduledEventId": sched,
                        "operationId": op.token,
                        "requestId": op.request_id,
                        "operationToken": op.token,
                    },
                    at=at,
                    extra={
                        "links": [
                            {
                                "workflowEvent": {
                                    "namespace": _NAMESPACE,
                                    "workflowId": "nexus-handler",
                                    "runId": self._uuid(),
                                    "eventRef": {
                                        "eventId": "1",
                                        "eventType": P + "WORKFLOW_EXECUTION_STARTED",
                                    },
                                }
                            }
                        ]
                    },
                )

            self._arrive([_Held(False, True, started)])
            return
        if move == "cancel_result":
            op.cancel_resolved = True
            ok = self.choose.chance(50)

            def cancel_result() -> None:
                if ok:
                    etype = "NEXUS_OPERATION_CANCEL_REQUEST_COMPLETED"
                    attrs: Json = {
                        "requestedEventId": str(op.cancel_requested),
                        "scheduledEventId": sched,
                    }
                else:
                    etype = "NEXUS_OPERATION_CANCEL_REQUEST_FAILED"
                    attrs = {
                        "requestedEventId": str(op.cancel_requested),
                        "failure": {"message": "handler refused", "applicationFailureInfo": {}},
                        "scheduledEventId": sched,
                    }
                self.write(etype, attrs, at=at, ignorable=True)

            self._arrive([_Held(False, True, cancel_result)])
            return
        op.finishing = True
        kind = self.choose.pick(("COMPLETED", "FAILED", "CANCELED", "TIMED_OUT"))

        def closed() -> None:
            attrs: Json = {"scheduledEventId": sched}
            if kind == "COMPLETED":
                attrs["result"] = payload("nexus result")
            else:
                info: Json = {
                    "scheduledEventId": sched,
                    "endpoint": op.endpoint,
                    "service": op.service,
                    "operation": op.operation,
                }
                if op.started:
                    info["operationToken"] = op.token
                cause: Json = {
                    "FAILED": {
                        "message": "handler failed",
                        "applicationFailureInfo": {"type": "X"},
                    },
                    "CANCELED": {"message": "operation canceled", "canceledFailureInfo": {}},
                    "TIMED_OUT": {
                        "message": "operation timed out",
                        "timeoutFailureInfo": {"timeoutType": "TIMEOUT_TYPE_SCHEDULE_TO_CLOSE"},
                    },
                }[kind]
                attrs["failure"] = {
                    "message": "nexus operation completed unsuccessfully",
                    "cause": cause,
                    "nexusOperationExecutionFailureInfo": info,
                }
            attrs["requestId"] = op.request_id
            self.write(f"NEXUS_OPERATION_{kind}", attrs, at=at)
            del self.nexus[op.scheduled]

        self._arrive([_Held(True, True, closed)])

    # --- run-level operations ---------------------------------------------------------------

    def _do_pause(self) -> None:
        """PAUSED; a task that is only scheduled is failed first; with a task in flight the
        PAUSED event is buffered like any other (§1 Buf, §2.3 Run)."""
        if self.wft == "started":
            at = self._arrival_time()
            attrs: Json = {"identity": "ops@host", "reason": "maintenance"}

            def paused() -> None:
                self.write("WORKFLOW_EXECUTION_PAUSED", attrs, at=at, ignorable=True)
                self.run = "PAUSED"
                self.pause_held = False

            self.pause_held = True
            self._arrive([_Held(False, False, paused)])
            return
        self._begin()
        if self.wft == "scheduled":
            self.write(
                "WORKFLOW_TASK_FAILED",
                {
                    "scheduledEventId": str(self.wft_scheduled),
                    "cause": _PAUSE_CAUSE,
                    "identity": "history-service",
                },
            )
            self.wft = "none"
        attrs = {"identity": "ops@host", "reason": "maintenance"}
        if self.rng.random() < 0.5:
            attrs["requestId"] = self._uuid()
        self.write("WORKFLOW_EXECUTION_PAUSED", attrs, ignorable=True)
        self.run = "PAUSED"

    def _do_unpause(self) -> None:
        self._begin()
        self.write(
            "WORKFLOW_EXECUTION_UNPAUSED",
            {"identity": "ops@host", "reason": "maintenance over"},
            ignorable=True,
        )
        self.run = "RUNNING"
        self._schedule_wft()

    def _terminate(self, *, timed_out: bool) -> None:
        """Terminate / run timeout: a task in flight is force-failed first, then the buffer is
        flushed, then the close event (I5, I9)."""
        self._begin()
        if self.wft == "started":
            self.write(
                "WORKFLOW_TASK_FAILED",
                {
                    "scheduledEventId": str(self.wft_scheduled),
                    "startedEventId": str(self.wft_started),
                    "cause": "WORKFLOW_TASK_FAILED_CAUSE_FORCE_CLOSE_COMMAND",
                    "identity": "history-service",
                },
            )
            self._flush()
        if timed_out:
            self.write("WORKFLOW_EXECUTION_TIMED_OUT", {"retryState": "RETRY_STATE_TIMEOUT"})
        else:
            attrs: Json = {"reason": "operator terminate"}
            if self.rng.random() < 0.5:
                attrs["details"] = payloads("cleanup")
            attrs["identity"] = "ops@host"
            self.write("WORKFLOW_EXECUTION_TERMINATED", attrs)
        self.run = "CLOSED"
        raise _Done

    def _do_terminate(self) -> None:
        self._terminate(timed_out=False)

    def _do_run_timeout(self) -> None:
        self._terminate(timed_out=True)


def void(_value: object) -> None:
    """Discard a value (lets a lambda call `write` for its effect)."""


@st.composite
def legal_histories(draw: st.DrawFn, max_steps: int = 30) -> Json:
    """A random legal history in canonical Temporal JSON (see the module docstring)."""
    seed = draw(st.integers(0, 2**32 - 1))
    steps = draw(st.integers(1, max_steps))
    return Sim(DrawChooser(draw), random.Random(seed), max_steps=steps).run_sim()


def random_history(seed: int, max_steps: int = 30) -> Json:
    """One legal history from a seed, without hypothesis."""
    rng = random.Random(seed)
    steps = rng.randint(1, max_steps)
    return Sim(RandomChooser(random.Random(seed ^ 0x5EED)), rng, max_steps=steps).run_sim()

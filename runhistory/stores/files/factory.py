"""The eventsourcing infrastructure factory for a files root, read from the environment."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote, urlsplit

from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    InfrastructureFactory,
    ProcessRecorder,
)
from eventsourcing.utils import Environment, EnvType, resolve_topic

from runhistory.stores.files.recorders import (
    DEFAULT_POLL_INTERVAL,
    FileAggregateRecorder,
    FileApplicationRecorder,
    FileProcessRecorder,
    FileRecorder,
    FileTrackingRecorder,
)

__all__ = ["Factory", "root_path"]

_R = TypeVar("_R", bound=FileRecorder)


def root_path(setting: str) -> Path:
    """The root directory named by a path or a `file://` URL (`file:///srv/runs`)."""
    if setting.startswith("file:"):
        parts = urlsplit(setting)
        if parts.netloc not in ("", "localhost"):
            raise OSError(f"a files store URL names a local directory, not host {parts.netloc!r}")
        return Path(unquote(parts.path))
    return Path(setting)


class Factory(InfrastructureFactory[FileTrackingRecorder]):
    """Recorders on the directory named by `RUNHISTORY_FILES_PATH` (created on first use).
    `RUNHISTORY_FILES_POLL_INTERVAL` sets how often subscriptions look for other processes'
    commits. Like other eventsourcing settings, each can be prefixed with the app's name."""

    RUNHISTORY_FILES_PATH = "RUNHISTORY_FILES_PATH"
    RUNHISTORY_FILES_POLL_INTERVAL = "RUNHISTORY_FILES_POLL_INTERVAL"

    aggregate_recorder_class = FileAggregateRecorder
    application_recorder_class = FileApplicationRecorder
    tracking_recorder_class = FileTrackingRecorder
    process_recorder_class = FileProcessRecorder

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        setting = self.env.get(self.RUNHISTORY_FILES_PATH)
        if not setting:
            keys = ", ".join(self.env.create_keys(self.RUNHISTORY_FILES_PATH))
            raise OSError(f"files store directory not found in environment with keys: {keys}")
        self.root = root_path(setting)
        interval = self.env.get(self.RUNHISTORY_FILES_POLL_INTERVAL)
        try:
            self.poll_interval = float(interval) if interval else DEFAULT_POLL_INTERVAL
        except ValueError:
            raise OSError(
                f"{self.RUNHISTORY_FILES_POLL_INTERVAL} must be seconds, not {interval!r}"
            ) from None
        self._recorders: list[FileRecorder] = []

    def _keep(self, recorder: _R) -> _R:
        self._recorders.append(recorder)
        return recorder

    def aggregate_recorder(self, purpose: str = "events") -> AggregateRecorder:
        return self._keep(
            self.aggregate_recorder_class(
                self.root, purpose=purpose, poll_interval=self.poll_interval
            )
        )

    def application_recorder(self) -> ApplicationRecorder:
        cls = self._recorder_class(self.APPLICATION_RECORDER_TOPIC, self.application_recorder_class)
        return self._keep(cls(self.root, poll_interval=self.poll_interval))

    def tracking_recorder(
        self, tracking_recorder_class: type[FileTrackingRecorder] | None = None
    ) -> FileTrackingRecorder:
        cls = tracking_recorder_class or self._recorder_class(
            self.TRACKING_RECORDER_TOPIC, self.tracking_recorder_class
        )
        return self._keep(cls(self.root, poll_interval=self.poll_interval))

    def process_recorder(self) -> ProcessRecorder:
        cls = self._recorder_class(self.PROCESS_RECORDER_TOPIC, self.process_recorder_class)
        return self._keep(cls(self.root, poll_interval=self.poll_interval))

    def _recorder_class(self, key: str, default: type[_R]) -> type[_R]:
        topic = self.env.get(key)
        if not topic:
            return default
        cls = resolve_topic(topic)
        if not (isinstance(cls, type) and issubclass(cls, default)):
            raise OSError(f"{key}={topic!r} is not a subclass of {default.__name__}")
        return cls

    def close(self) -> None:
        for recorder in self._recorders:
            recorder.close()
        self._recorders.clear()

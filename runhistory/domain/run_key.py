"""The identity of one workflow run, and the stable aggregate id derived from it."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

__all__ = ["RUNHISTORY_NAMESPACE_UUID", "RunKey"]

# Fixed forever: changing it would orphan every stored run.
RUNHISTORY_NAMESPACE_UUID = uuid.UUID("5d0f5b7e-3c1a-4e8b-9a57-52756e486973")


@dataclass(frozen=True, slots=True)
class RunKey:
    """A run is keyed by (namespace, workflow id, run id), as Temporal keys it."""

    workflow_id: str
    run_id: str
    namespace: str = "default"

    @property
    def aggregate_id(self) -> uuid.UUID:
        """uuid5 of the three parts, encoded unambiguously (no separator can collide)."""
        name = json.dumps([self.namespace, self.workflow_id, self.run_id], ensure_ascii=False)
        return uuid.uuid5(RUNHISTORY_NAMESPACE_UUID, name)

    def __str__(self) -> str:
        return f"{self.namespace}/{self.workflow_id}/{self.run_id}"

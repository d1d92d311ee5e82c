"""Reading one run from the server: history pages (always in long-poll mode, so the last page
token can be tailed from) and DescribeWorkflowExecution, both as proto3 JSON dicts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from google.protobuf.json_format import MessageToDict
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import HistoryEventFilterType
from temporalio.api.workflowservice.v1 import (
    DescribeWorkflowExecutionRequest,
    GetWorkflowExecutionHistoryRequest,
    GetWorkflowExecutionHistoryResponse,
)
from temporalio.client import Client

from runhistory.adapters.temporal_feed import RunFeed
from runhistory.domain.run_key import RunKey

__all__ = ["POLL_TIMEOUT", "RPC_TIMEOUT", "RunReader"]

RPC_TIMEOUT = timedelta(seconds=30)
POLL_TIMEOUT = timedelta(seconds=40)
"""A long poll's deadline: past the server's own 20 s poll interval, so it normally answers."""

_ALL_EVENTS = HistoryEventFilterType.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT


class RunReader:
    """Reads runs of the client's namespace. RPCs are retried by the SDK on transient errors."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.namespace = client.namespace

    async def page(self, feed: RunFeed) -> GetWorkflowExecutionHistoryResponse:
        """The page after `feed.token` (the first page for an empty token). With events left to
        read it answers at once; at the end of an open run it waits for new events."""
        request = GetWorkflowExecutionHistoryRequest(
            namespace=self.namespace,
            execution=WorkflowExecution(workflow_id=feed.key.workflow_id, run_id=feed.key.run_id),
            next_page_token=feed.token,
            wait_new_event=True,
            history_event_filter_type=_ALL_EVENTS,
        )
        return await self.client.workflow_service.get_workflow_execution_history(
            request, retry=True, timeout=POLL_TIMEOUT
        )

    async def catch_up(self, feed: RunFeed, target: int) -> None:
        """Read pages until the feed holds `target` durable events (describe's historyLength),
        or the run's last page. The token left in the feed is where a tail goes on from."""
        while True:
            response = await self.page(feed)
            feed.absorb(MessageToDict(e) for e in response.history.events)
            feed.token = response.next_page_token
            if not feed.token or len(feed.durable) >= target or not response.history.events:
                return

    async def describe(self, key: RunKey) -> dict[str, Any]:
        """The server's DescribeWorkflowExecutionResponse as proto3 JSON."""
        request = DescribeWorkflowExecutionRequest(
            namespace=self.namespace,
            execution=WorkflowExecution(workflow_id=key.workflow_id, run_id=key.run_id),
        )
        response = await self.client.workflow_service.describe_workflow_execution(
            request, retry=True, timeout=RPC_TIMEOUT
        )
        described: dict[str, Any] = MessageToDict(response)
        return described

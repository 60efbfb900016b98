"""The fan-out's range tasks sent to the range work queue on SQS: the `WorkQueue` port."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any, Final

from functions.core.domain.object_state import TransientStoreError

# SendMessageBatch takes at most 10 messages (Amazon SQS API Reference, SendMessageBatch).
SEND_BATCH_LIMIT: Final = 10


class SqsWorkQueue:
    def __init__(self, client_factory: Callable[[], Any], queue_url: str) -> None:
        # The client is made on the first fan-out: most invocations never send a task, and creating a
        # client loads its service model (cold start).
        self._client_factory = client_factory
        self._queue_url = queue_url

    @cached_property
    def _client(self) -> Any:
        return self._client_factory()

    def send(self, bodies: list[str]) -> None:
        for first in range(0, len(bodies), SEND_BATCH_LIMIT):
            batch = bodies[first : first + SEND_BATCH_LIMIT]
            entries = [{"Id": str(number), "MessageBody": body} for number, body in enumerate(batch)]
            response = self._client.send_message_batch(QueueUrl=self._queue_url, Entries=entries)
            failed = response.get("Failed", [])
            if failed:
                # A task lost would leave the fan-out unfinished: fail the attempt (it is retried, and
                # tasks sent twice are harmless: a range is written idempotently).
                reasons = sorted({f"{entry.get('Code')}: {entry.get('Message', '')}" for entry in failed})
                raise TransientStoreError(f"{len(failed)} range tasks not sent: {'; '.join(reasons)}")

"""The local engine's record of every event a bus accepted, for `eventpipe events tail --local`.

One JSON line per accepted event: `received_at` (ISO-8601 UTC), `bus`, `rules` (the names of the rules
it matched), `replay_name` (for replayed events) and the `event` itself. The file lives in the private
state dir (0700, the file 0600, never opened through a symlink: `state.open_private`). It is bounded: past
`max_bytes` it is renamed to `<name>.1` (the previous `.1` is dropped) and a new file starts.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eventpipe.local.state import open_private

log = logging.getLogger("eventpipe.local.event_log")

DEFAULT_MAX_BYTES = 20 * 1024 * 1024


class EventLog:
    def __init__(self, path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.path = path
        self._max_bytes = max_bytes
        self._lock = threading.Lock()

    def append(self, bus: str, event: dict[str, Any], rules: list[str], *, replay_name: str | None) -> None:
        record = {
            "received_at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "bus": bus,
            "rules": rules,
            "replay_name": replay_name,
            "event": event,
        }
        line = (json.dumps(record, separators=(",", ":"), default=str) + "\n").encode()
        try:
            with self._lock:
                with open_private(self.path, "ab") as out:
                    out.write(line)
                    size = out.tell()
                if size > self._max_bytes:
                    self.path.replace(self.path.with_name(self.path.name + ".1"))
        except OSError:  # the log is a view: it must never stop delivery
            log.exception("could not append to the events log %s", self.path)

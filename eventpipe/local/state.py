"""The running emulator's state file (`.eventpipe/local/state.json`, see docs/architecture.md)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from eventpipe.local.deploy import PROJECT_ROOT

STATE_FILE = "state.json"


def default_state_dir() -> Path:
    return PROJECT_ROOT / ".eventpipe" / "local"


def state_file(state_dir: Path) -> Path:
    return state_dir / STATE_FILE


def write_state(state_dir: Path, state: dict[str, Any]) -> None:
    """Write atomically, so a reader never sees half a file."""
    state_dir.mkdir(parents=True, exist_ok=True)
    partial = state_dir / f".{STATE_FILE}.{os.getpid()}"
    partial.write_text(json.dumps(state, indent=2, sort_keys=True))
    partial.replace(state_file(state_dir))


def read_state(state_dir: Path) -> dict[str, Any] | None:
    try:
        state = json.loads(state_file(state_dir).read_text())
    except (FileNotFoundError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def remove_state(state_dir: Path, *, pid: int) -> None:
    """Remove the state file if it still describes process `pid` (never another emulator's)."""
    state = read_state(state_dir)
    if state is not None and state.get("pid") == pid:
        state_file(state_dir).unlink(missing_ok=True)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie answers signals but is gone
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True

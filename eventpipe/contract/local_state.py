"""Where local mode keeps its state: the location only (local mode writes it, the operator CLI reads it).

`eventpipe local start` writes `<state dir>/state.json` (endpoint, pid, outputs, credentials); the state
dir is `$EVENTPIPE_LOCAL_STATE_DIR` if set (`--state-dir` sets the same), else `.eventpipe/local` in the
project root. How the file is written and read safely is local mode's concern (`eventpipe/local/state.py`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from eventpipe.contract.paths import PROJECT_ROOT

STATE_DIR_ENV: Final = "EVENTPIPE_LOCAL_STATE_DIR"
# Relative to the project root.
STATE_DIR: Final = Path(".eventpipe") / "local"
STATE_FILE: Final = "state.json"
# Every event the local engine accepts, one JSON line each (`eventpipe events tail` reads it).
EVENTS_LOG: Final = "events.jsonl"
# Each local Lambda function's log: `<state dir>/logs/<function name>.log`.
LOGS_DIR: Final = "logs"


def default_state_dir(project_root: Path = PROJECT_ROOT) -> Path:
    return project_root / STATE_DIR


def state_dir_from_env() -> Path | None:
    """The state dir `$EVENTPIPE_LOCAL_STATE_DIR` names, or None when it is unset or empty."""
    value = os.environ.get(STATE_DIR_ENV)
    return Path(value) if value else None


def pid_alive(pid: int) -> bool:
    """Whether the process a state file names (its `pid`) still runs: a running local mode."""
    if pid <= 0:  # 0 and negatives address process groups
        return False
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

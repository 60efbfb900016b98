"""The running emulator's state directory and state file (`.eventpipe/local/state.json`, see
docs/architecture.md), kept private to the user who started it.

- The directory is created 0700 by us, or an existing one is accepted only when it is a real directory
  (not a symlink) owned by us and writable by nobody else; it is then tightened to 0700. Its parent
  must not let another user swap it (owned by us or root, and sticky if others may write to it, like
  /tmp). Anything else is refused with one line (`UnsafeStateDirError`).
- Files in it (state.json, logs) are opened with O_NOFOLLOW and created 0600, so a planted symlink
  can never redirect a write, and a state file owned by someone else is ignored.
- The state file carries the credentials of the run and the emulator's identity: pid, the process's
  start time (/proc/PID/stat, in clock ticks since boot), the boot id and a random instance cookie the
  emulator received in its environment. `owns_process` checks all of them (the cookie through
  /proc/PID/environ, readable only for our own processes) before anyone signals that pid.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from eventpipe.contract.errors import EventpipeError
from eventpipe.contract.local_state import STATE_DIR, STATE_FILE, pid_alive
from eventpipe.contract.paths import PROJECT_ROOT

INSTANCE_ENV = "EVENTPIPE_LOCAL_INSTANCE"
_PROC = Path("/proc")


class UnsafeStateDirError(EventpipeError):
    """The state directory could be read or replaced by another user."""


def default_state_dir() -> Path:
    return PROJECT_ROOT / STATE_DIR


def state_file(state_dir: Path) -> Path:
    return state_dir / STATE_FILE


def absolute(path: Path) -> Path:
    """Absolute without resolving symlinks (resolving would silently follow a planted one)."""
    return Path(os.path.abspath(os.path.expanduser(path)))


# --- the directory ---------------------------------------------------------------------------------


def prepare_state_dir(state_dir: Path) -> Path:
    """Create `state_dir` 0700 (and missing parents), or check an existing one; returns it absolute."""
    directory = absolute(state_dir)
    missing = [p for p in (directory, *directory.parents) if not os.path.lexists(p)]
    for path in reversed(missing):
        # Created meanwhile by another process: checked below like any existing directory.
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, 0o700)
    check_state_dir(directory)
    info = os.lstat(directory)
    if stat.S_IMODE(info.st_mode) != 0o700:
        os.chmod(directory, 0o700)  # ours and writable only by us: tightening it is safe
    return directory


def check_state_dir(directory: Path) -> None:
    """Raise UnsafeStateDirError unless `directory` is private to this user (see the module docstring)."""
    try:
        info = os.lstat(directory)
    except FileNotFoundError:
        raise UnsafeStateDirError(f"state directory {directory} does not exist") from None
    if stat.S_ISLNK(info.st_mode):
        raise UnsafeStateDirError(
            f"refusing state directory {directory}: it is a symlink (pass the real directory)"
        )
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafeStateDirError(f"refusing state directory {directory}: it is not a directory")
    if info.st_uid != os.getuid():
        raise UnsafeStateDirError(
            f"refusing state directory {directory}: it belongs to uid {info.st_uid}, not to you "
            "(choose a directory of your own with --state-dir)"
        )
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UnsafeStateDirError(
            f"refusing state directory {directory}: others may write to it "
            f"(mode {stat.S_IMODE(info.st_mode):o}; chmod 700 it or choose another)"
        )
    parent = os.stat(directory.parent)
    if parent.st_uid not in (0, os.getuid()) or (
        parent.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not parent.st_mode & stat.S_ISVTX
    ):
        raise UnsafeStateDirError(
            f"refusing state directory {directory}: another user could replace it "
            f"(its parent {directory.parent} is writable by others without the sticky bit, "
            "or owned by another user)"
        )


# --- files -----------------------------------------------------------------------------------------


def open_private(path: Path, mode: str = "ab") -> IO[Any]:
    """Open a file in a state directory without following symlinks; created 0600.
    `mode` is "ab" (append, logs), "wb" (truncate) or "rb"."""
    flags = os.O_NOFOLLOW | os.O_CLOEXEC
    if mode == "rb":
        flags |= os.O_RDONLY
    elif mode == "ab":
        flags |= os.O_WRONLY | os.O_CREAT | os.O_APPEND
    elif mode == "wb":
        flags |= os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    else:
        raise ValueError(f"unsupported mode {mode!r}")
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeStateDirError(f"refusing {path}: it is a symlink") from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid():
            raise UnsafeStateDirError(f"refusing {path}: not a regular file of yours")
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, mode)


def write_state(state_dir: Path, state: Mapping[str, Any]) -> None:
    """Write atomically (a reader never sees half a file), 0600, never through a symlink."""
    partial = state_dir / f".{STATE_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(json.dumps(state, indent=2, sort_keys=True))
    os.replace(partial, state_file(state_dir))


def read_state(state_dir: Path) -> dict[str, Any] | None:
    """The state, or None when there is none (or it is not a regular file of ours, or not JSON)."""
    try:
        with open_private(state_file(state_dir), "rb") as stream:
            state = json.loads(stream.read())
    except (FileNotFoundError, ValueError, UnsafeStateDirError):
        return None
    return state if isinstance(state, dict) else None


def remove_state(state_dir: Path, *, pid: int) -> None:
    """Remove the state file if it still describes process `pid` (never another emulator's)."""
    state = read_state(state_dir)
    if state is not None and state.get("pid") == pid:
        state_file(state_dir).unlink(missing_ok=True)


# --- the process -----------------------------------------------------------------------------------


def new_instance_cookie() -> str:
    return secrets.token_hex(16)


def process_identity(pid: int) -> dict[str, Any]:
    """What identifies process `pid` across pid reuse: its start time and the boot it belongs to."""
    return {"start_ticks": _start_ticks(pid), "boot_id": _boot_id()}


def owns_process(state: Mapping[str, Any]) -> bool:
    """True only if the state's pid is alive and is the emulator that wrote this state: same start
    time and boot, and our instance cookie in its environment (see the module docstring)."""
    try:
        pid = int(state.get("pid", 0))
        identity = state.get("process") or {}
        cookie = str(state.get("instance", ""))
    except (TypeError, ValueError):
        return False
    if pid <= 0 or not cookie or not isinstance(identity, Mapping) or not pid_alive(pid):
        return False
    try:
        if identity.get("boot_id") != _boot_id() or identity.get("start_ticks") != _start_ticks(pid):
            return False
        environ = (_PROC / str(pid) / "environ").read_bytes().split(b"\0")
    except OSError:  # gone, or not ours (environ is readable only by the process's owner)
        return False
    return f"{INSTANCE_ENV}={cookie}".encode() in environ


def _start_ticks(pid: int) -> int:
    # Field 22 of /proc/PID/stat (starttime); fields counted after the parenthesised command name,
    # which may itself contain spaces and parentheses.
    fields = (_PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[19])


def _boot_id() -> str:
    return (_PROC / "sys" / "kernel" / "random" / "boot_id").read_text().strip()

"""The state directory is private, its files are never reached through symlinks, `local stop` signals
only an emulator it can prove it started, and the state file is looked up in the project only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from eventpipe.contract.local_state import STATE_DIR_ENV
from eventpipe.local.emulator import Emulator
from eventpipe.local.state import (
    UnsafeStateDirError,
    open_private,
    prepare_state_dir,
    process_identity,
    read_state,
    write_state,
)
from eventpipe.ops import context


def eventpipe(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it (its one-line error handling included)."""
    return subprocess.run(
        [sys.executable, "-m", "eventpipe.ops.main", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_new_state_dir_is_created_private(tmp_path: Path) -> None:
    created = prepare_state_dir(tmp_path / "a" / "state")

    assert oct(created.stat().st_mode & 0o777) == oct(0o700)
    assert oct((tmp_path / "a").stat().st_mode & 0o777) == oct(0o700)


def test_a_symlinked_state_dir_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(real)

    with pytest.raises(UnsafeStateDirError, match="symlink"):
        prepare_state_dir(link)
    with pytest.raises(UnsafeStateDirError, match="symlink"):
        Emulator.start(state_dir=link)  # refused before any process is started
    assert list(real.iterdir()) == []


def test_local_start_with_a_symlinked_state_dir_fails_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(tmp_path / "real")

    result = eventpipe("local", "start", "--state-dir", str(tmp_path / "link"))

    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: refusing state directory {tmp_path / 'link'}: it is a symlink (pass the real directory)"
    ]
    assert "Traceback" not in result.stderr


def test_a_state_dir_others_may_write_to_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)

    with pytest.raises(UnsafeStateDirError, match="others may write"):
        prepare_state_dir(shared)


@pytest.mark.skipif(os.getuid() != 0, reason="giving a directory to another user needs root")
def test_a_state_dir_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign"
    foreign.mkdir(mode=0o700)
    os.chown(foreign, 65534, 65534)

    with pytest.raises(UnsafeStateDirError, match="belongs to uid 65534"):
        prepare_state_dir(foreign)


def test_state_and_log_files_are_never_opened_through_a_symlink(tmp_path: Path) -> None:
    state_dir = prepare_state_dir(tmp_path / "state")
    target = tmp_path / "victim.txt"
    target.write_text("untouched")
    (state_dir / "emulator.log").symlink_to(target)
    (state_dir / "state.json").symlink_to(target)

    with pytest.raises(UnsafeStateDirError, match="symlink"):
        open_private(state_dir / "emulator.log", "ab")
    assert read_state(state_dir) is None
    write_state(state_dir, {"pid": 1})  # replaces the link itself, never writes through it
    assert target.read_text() == "untouched"
    assert not (state_dir / "state.json").is_symlink()
    assert oct((state_dir / "state.json").stat().st_mode & 0o777) == oct(0o600)


@pytest.fixture
def bystander() -> Iterator[subprocess.Popen[bytes]]:
    """A process of this user that is not an emulator."""
    process = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"])  # until killed
    yield process
    process.kill()
    process.wait()


@pytest.mark.parametrize("cookie", [None, "guessed"])
def test_a_planted_state_file_does_not_make_local_stop_signal_its_pid(
    tmp_path: Path, bystander: subprocess.Popen[bytes], cookie: str | None
) -> None:
    # Given a state file naming a live process of ours, even with its true start time and boot id
    state_dir = prepare_state_dir(tmp_path / "state")
    planted = {
        "pid": bystander.pid,
        "process": process_identity(bystander.pid),
        "endpoint": "http://127.0.0.1:1",
        "region": "us-east-1",
        "stack": "eventpipe-dev",
    }
    if cookie:
        planted["instance"] = cookie
    write_state(state_dir, planted)

    # When `local stop` is asked to stop it
    result = eventpipe("local", "stop", "--state-dir", str(state_dir))

    # Then it refuses with one line and the process lives on
    assert result.returncode != 0
    assert "not an emulator started by you" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert bystander.poll() is None


def test_the_state_file_is_not_searched_in_parent_directories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a state file planted in a parent of the working directory
    planted = tmp_path / ".eventpipe" / "local" / "state.json"
    planted.parent.mkdir(parents=True)
    planted.write_text(json.dumps({"endpoint": "http://evil.example", "outputs": {}}))
    work = tmp_path / "somewhere" / "deeper"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    monkeypatch.delenv(STATE_DIR_ENV, raising=False)

    found = context.find_state_file()

    assert found != planted
    assert found is None or found.parent.parent.parent == Path(context.__file__).resolve().parents[2]

"""The fingerprint of the code a local worker runs: what lies under `functions/` and `schemas/`.

A warm worker keeps the modules it imported, so an edited handler would otherwise keep running the old
code until the emulator restarts. The invoker adds this fingerprint to the configuration's: a change
under these folders retires the warm workers and the next invocation starts a new one. Only paths,
sizes and modification times are read (no file contents), so it is cheap enough for every invocation
(the project's ~40 files: well under a millisecond).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

# The folders of the Lambda code asset (docs/architecture.md, "Lambda packaging").
CODE_DIRS = ("functions", "schemas")
_SKIPPED_DIRS = frozenset({"__pycache__"})


def code_fingerprint(project_root: Path) -> str:
    """A digest of (relative path, size, mtime) of every file under the code folders."""
    digest = hashlib.sha256()
    for folder in CODE_DIRS:
        base = project_root / folder
        for root, dirs, files in os.walk(base):
            dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS)
            for name in sorted(files):
                if name.endswith((".pyc", ".pyo")):
                    continue
                path = Path(root) / name
                try:
                    stat = path.stat()
                except OSError:  # removed while walking: the next call sees the new state
                    continue
                digest.update(
                    f"{path.relative_to(project_root)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode()
                )
    return digest.hexdigest()

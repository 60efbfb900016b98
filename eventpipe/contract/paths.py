"""Where the project's working tree is: the folder holding app.py, cdk.json, functions/ and schemas/.

Found from this file (eventpipe/contract/paths.py), never from the working directory. Everything that
needs the project root (local mode, the operator CLI's scaffold and state lookup, the S3 event schema)
imports it from here.
"""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]

"""Child process of benchmark 3: ingest one S3 object and report its own peak RSS as JSON on stdout.

Run as `python -m bench.memory_probe MODE ENDPOINT BUCKET KEY`. The object is streamed from the moto
server of the parent process (so the stored 200 MB object never counts here). MODE `stream` runs the
ingest code with an in-memory record sink; MODE `whole` reads the object whole, the naive way.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

_KB = 1024


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0), so the peak excludes import-time spikes."""
    try:
        Path("/proc/self/clear_refs").write_text("5", encoding="ascii")
    except OSError:
        return False
    return True


def _ingest_whole(body: Any) -> int:
    from functions.core.domain.readers import decode_json  # imported before the baseline, see main()

    records = 0
    text = body.read().decode("utf-8")
    for line in text.splitlines():
        if line.strip():
            decode_json(line)
            records += 1
    return records


def main(mode: str, endpoint: str, bucket: str, key: str) -> None:
    import boto3

    import functions.core.domain.readers  # noqa: F401 - loaded before the baseline: code is not data
    from bench import subject

    s3 = boto3.client("s3", endpoint_url=endpoint)
    ingest = subject.streaming_ingest() if mode == "stream" else None
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    peak_was_reset = _reset_peak()
    baseline_kb = _status_kb("VmRSS")
    records = ingest(body, key) if ingest else _ingest_whole(body)
    peak_kb = _status_kb("VmHWM")
    print(
        json.dumps(
            {
                "mode": mode,
                "records": records,
                "baseline_mb": baseline_kb / _KB,
                "peak_mb": peak_kb / _KB,
                "above_baseline_mb": (peak_kb - baseline_kb) / _KB,
                "peak_reset": peak_was_reset,
            }
        )
    )


if __name__ == "__main__":
    main(*sys.argv[1:5])

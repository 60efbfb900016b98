"""Rejects reports written to (and cleared from) the rejects bucket: the `ReportSink` port on S3."""

from __future__ import annotations

from typing import Any


class S3ReportSink:
    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def put(self, key: str, body: bytes) -> None:
        self._client.put_object(Bucket=self._bucket, Key=key, Body=body, ContentType="application/x-ndjson")

    def delete(self, key: str) -> None:
        self._client.delete_object(Bucket=self._bucket, Key=key)

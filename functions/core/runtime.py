"""Wiring for the Lambda runtime: real AWS clients behind the use cases' ports, built once, lazily.

Clients are created on first use rather than at import: creating one loads its service model, which
would otherwise count against every cold start's import time even for events that are skipped.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import Any

from functions.core.datasets import DatasetRegistry
from functions.core.objects import S3ObjectReader
from functions.core.rejects import S3ReportSink
from functions.core.repository import DynamoRecordStore
from functions.core.services import LeasePolicy, Services
from functions.core.settings import get_settings

# Bounded retries of throttling, 5xx and timeouts inside botocore; beyond them the error is raised
# and Lambda's asynchronous retries / on-failure destination take over.
_CLIENT_CONFIG = {
    "retries": {"mode": "standard", "max_attempts": 5},
    "connect_timeout": 5,
    "read_timeout": 30,
    # botocore's client-side validation walks every nested attribute value of a 25-item batch: 84 us
    # of the 150 us client CPU per record (make bench). The items come from our own converter, and
    # DynamoDB validates every request server-side anyway.
    "parameter_validation": False,
}
# Time kept in reserve at the end of an invocation for writing, cleanup and commit after a wait.
_RESERVE_SECONDS = 120.0
_MAX_WAIT_SECONDS = 60.0


@functools.cache
def base_services() -> Services:
    import boto3
    from botocore.config import Config

    settings = get_settings()
    config = Config(**_CLIENT_CONFIG)
    s3 = boto3.client("s3", config=config)
    dynamodb = boto3.client("dynamodb", config=config)
    return Services(
        store=DynamoRecordStore(dynamodb, settings.table_name),
        objects=S3ObjectReader(s3),
        reports=S3ReportSink(s3, settings.rejects_bucket),
        datasets=DatasetRegistry.load(),
        max_json_bytes=settings.max_json_array_bytes,
        lease=LeasePolicy(lease_seconds=settings.lease_seconds),
    )


def services_for(context: Any) -> Services:
    """The services for one invocation: its request id (lease token) and how long it may wait for a busy
    object, derived from its deadline."""
    services = replace(base_services(), invocation_id=getattr(context, "aws_request_id", None))
    remaining_ms = getattr(context, "get_remaining_time_in_millis", None)
    if remaining_ms is None:
        return services
    wait = max(0.0, min(_MAX_WAIT_SECONDS, remaining_ms() / 1000 - _RESERVE_SECONDS))
    return replace(services, lease=replace(services.lease, max_wait_seconds=wait))

"""Wiring for the Lambda runtime: real AWS clients behind the use cases' ports, built once, lazily.

Clients are created on first use rather than at import: creating one loads its service model, which
would otherwise count against every cold start's import time even for events that are skipped.
"""

from __future__ import annotations

import copy
import functools
import gc
from dataclasses import replace
from typing import Any

from functions.core.adapters.dynamodb_record_store import DynamoRecordStore
from functions.core.adapters.s3_object_reader import S3ObjectReader
from functions.core.adapters.s3_report_sink import S3ReportSink
from functions.core.adapters.sqs_work_queue import SqsWorkQueue
from functions.core.domain.datasets import DatasetRegistry
from functions.core.use_cases.ports import FanoutPolicy, LeasePolicy, Services
from functions.core.wiring.settings import get_settings

# Bounded retries of throttling, 5xx and timeouts inside botocore; beyond them the error is raised
# and Lambda's asynchronous retries / on-failure destination take over. (botocore's `max_attempts`
# would count retries only, one more call than it says; `total_max_attempts` includes the first.)
MAX_ATTEMPTS = 5
_CLIENT_CONFIG = {
    "retries": {"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
    "connect_timeout": 5,
    "read_timeout": 30,
    # botocore's client-side validation walks every nested attribute value of a 25-item batch: 84 us
    # of the 150 us client CPU per record (make bench). The items come from our own converter, and
    # DynamoDB validates every request server-side anyway.
    "parameter_validation": False,
}
_MIN_POOL_CONNECTIONS = 10  # botocore's default
# Time kept in reserve at the end of an invocation for writing, cleanup and commit after a wait.
_RESERVE_SECONDS = 120.0
_MAX_WAIT_SECONDS = 60.0
# A lease must outlive the invocation holding it, whatever the function's timeout: a holder still writing
# after its lease expired could overwrite the items of a newer version that took the object over.
_LEASE_MARGIN_SECONDS = 30.0


def client_config() -> Any:
    """The botocore `Config` of the functions' clients (also what the benchmark's client uses)."""
    from botocore.config import Config

    return Config(**copy.deepcopy(_CLIENT_CONFIG))  # botocore rewrites `retries` in place


def dynamodb_client(session: Any = None, config: Any = None) -> Any:
    """The functions' DynamoDB client (`client_config()` unless given); `DynamoRecordStore` adds its
    BatchWriteItem body encoding (dynamodb_batch_writer.pre_encode_batch_writes)."""
    import boto3

    return (session or boto3).client("dynamodb", config=config or client_config())


@functools.cache
def base_services() -> Services:
    import boto3
    from botocore.config import Config

    settings = get_settings()
    config = client_config()
    s3 = boto3.client("s3", config=config)
    # A connection per writer thread, plus one for the caller's own requests (lease, superseded checks):
    # beyond the pool size urllib3 opens and discards connections (botocore Config, max_pool_connections).
    pool = Config(max_pool_connections=max(_MIN_POOL_CONNECTIONS, settings.writers + 1))
    dynamodb = dynamodb_client(config=config.merge(pool))
    queue_url = settings.fanout_queue_url
    queue = SqsWorkQueue(lambda: boto3.client("sqs", config=config), queue_url) if queue_url else None
    services = Services(
        store=DynamoRecordStore(dynamodb, settings.table_name, writers=settings.writers),
        objects=S3ObjectReader(s3),
        reports=S3ReportSink(s3, settings.rejects_bucket),
        datasets=DatasetRegistry.load(),
        lease=LeasePolicy(lease_seconds=settings.lease_seconds),
        fanout=FanoutPolicy(queue=queue, threshold_bytes=settings.fanout_threshold_bytes),
        writers=settings.writers,
    )
    keep_out_of_collections()
    return services


def keep_out_of_collections() -> None:
    """Move what the cold start built (modules, botocore's service models, clients) out of the cyclic
    garbage collector's reach: they live as long as the execution environment, yet every full collection
    an ingest triggers would walk them again. `gc.freeze()` ("move them to a permanent generation and
    ignore all the future collections", Python docs, gc module) is O(1); objects made later are
    collected as usual. A large ingest allocates millions of short-lived items, so full collections
    come often: frozen, they skip the ~100,000 objects of the set-up clients (`make bench`, scale)."""
    gc.freeze()


def services_for(context: Any) -> Services:
    """The services for one invocation: its request id (lease token), how long it may wait for a busy
    object and how long its lease lasts, both derived from its deadline."""
    services = replace(base_services(), invocation_id=getattr(context, "aws_request_id", None))
    remaining_ms = getattr(context, "get_remaining_time_in_millis", None)
    if remaining_ms is None:
        return services
    remaining = remaining_ms() / 1000
    wait = max(0.0, min(_MAX_WAIT_SECONDS, remaining - _RESERVE_SECONDS))
    lease_seconds = max(services.lease.lease_seconds, remaining + _LEASE_MARGIN_SECONDS)
    # A long ingest hands over to a continuation (fan_out.continue_elsewhere) with time left to
    # checkpoint and send it; without a work queue it runs on (Lambda's retries resume it).
    hand_over_at = services.clock() + remaining - _RESERVE_SECONDS if services.fanout.queue else None
    return replace(
        services,
        lease=replace(services.lease, max_wait_seconds=wait, lease_seconds=lease_seconds),
        hand_over_at=hand_over_at,
    )

"""The embedded AWS for in-process benchmarks: moto's threaded server on a free loopback port.

Resources are created exactly as docs/architecture.md describes them (versioned ingest bucket, separate
rejects bucket, table `pk`/`sk` + GSI `by-owner`), so the ingest code runs unmodified against them.
"""

from __future__ import annotations

import logging
import os
import urllib.request
from collections import Counter
from dataclasses import dataclass
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from eventpipe.local.auth import LocalCredentials

REGION = "us-east-1"
BUCKET = "bench-ingest"
REJECTS_BUCKET = "bench-rejects"
TABLE = "bench-records"

# Any credentials work against moto; set before any client exists so nothing looks for real ones. They
# come from local mode's one source of throwaway credentials (a fresh pair per run).
RUN_CREDENTIALS = {
    **LocalCredentials.generate().aws_environment(),
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


@dataclass(frozen=True, slots=True)
class Resources:
    bucket: str
    rejects_bucket: str
    table: str


class EmbeddedAws:
    """A moto server in a daemon thread of this process; `reset()` empties every service between runs."""

    def __init__(self) -> None:
        os.environ.update(RUN_CREDENTIALS)
        os.environ.pop("AWS_SESSION_TOKEN", None)  # a real session's token must not ride along
        # werkzeug logs one line per request to stderr; thousands of them would bury the report.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        # The harness's own clients come from a private session: the default session is left to the code
        # under test, so a request counter attached to it sees that code's requests only.
        self._session = boto3.session.Session(region_name=REGION)

    def client(self, service: str) -> Any:
        return self._session.client(service, endpoint_url=self.endpoint)

    def resource(self, service: str) -> Any:
        return self._session.resource(service, endpoint_url=self.endpoint)

    def reset(self) -> None:
        """Drop all state (moto's reset API), so each run starts from an empty table."""
        reset_url = f"{self.endpoint}/moto-api/reset"  # always http://127.0.0.1: a URL we built
        request = urllib.request.Request(reset_url, method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            response.read()

    def create_contract_resources(self) -> Resources:
        s3 = self.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        s3.create_bucket(Bucket=REJECTS_BUCKET)
        self.client("dynamodb").create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
                {"AttributeName": "owner", "AttributeType": "S"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "by-owner",
                    "KeySchema": [{"AttributeName": "owner", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "KEYS_ONLY"},
                }
            ],
        )
        return Resources(BUCKET, REJECTS_BUCKET, TABLE)

    def count_items(self, table: str, owner: str | None = None) -> int:
        """Items in `table` (all, or those an object owns via the `by-owner` index), paginated."""
        pages = self.client("dynamodb").get_paginator("query" if owner else "scan")
        arguments: dict[str, Any] = {"TableName": table, "Select": "COUNT"}
        if owner:
            arguments |= {
                "IndexName": "by-owner",
                "KeyConditionExpression": "#owner = :owner",
                "ExpressionAttributeNames": {"#owner": "owner"},
                "ExpressionAttributeValues": {":owner": {"S": owner}},
            }
        return sum(page["Count"] for page in pages.paginate(**arguments))

    def stop(self) -> None:
        self._server.stop()


class WriteRequestCounter:
    """Counts DynamoDB write requests as they leave botocore (`before-send`: every HTTP attempt, retries too).

    Attach it to a client's or a session's event system *before* the clients it should see are created
    (botocore copies a session's handlers into each new client).
    """

    OPERATIONS = ("BatchWriteItem", "PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems")

    def __init__(self) -> None:
        self.by_operation: Counter[str] = Counter()

    def attach(self, events: Any) -> None:
        for operation in self.OPERATIONS:
            events.register(
                f"before-send.dynamodb.{operation}", self._count, unique_id=f"bench-{id(self)}-{operation}"
            )

    def _count(self, request: Any, **_: Any) -> None:
        target = request.headers.get("X-Amz-Target", b"")
        name = target.decode() if isinstance(target, bytes) else str(target)
        self.by_operation[name.rsplit(".", 1)[-1]] += 1

    def reset(self) -> None:
        self.by_operation.clear()

    @property
    def total(self) -> int:
        return sum(self.by_operation.values())

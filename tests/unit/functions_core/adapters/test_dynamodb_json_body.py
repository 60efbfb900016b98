"""BatchWriteItem bodies encoded by json.dumps are the bytes botocore's serializer sends, signed as sent."""

from __future__ import annotations

import base64
from typing import Any

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.credentials import Credentials

from functions.core.adapters.dynamodb_json_body import encode_batch_writes_with_json
from functions.core.adapters.dynamodb_record_store import DynamoRecordStore
from functions.core.wiring.lambda_services import client_config

from ..conftest import TABLE, World

CREDENTIALS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
REGION = "us-east-1"


class _Body:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


class SentRequests:
    """Answers every send of a client (botocore's `before-send` event) and keeps what would have left."""

    def __init__(self, client: Any) -> None:
        self.sent: list[Any] = []
        client.meta.events.register("before-send.dynamodb.BatchWriteItem", self._answer)

    def _answer(self, request: Any, **_: Any) -> AWSResponse:
        self.sent.append(request)
        headers = {"Content-Type": "application/x-amz-json-1.0"}
        return AWSResponse(request.url, 200, headers, _Body(b'{"UnprocessedItems":{}}'))


def _client(*, json_body: bool) -> Any:
    session = boto3.session.Session(
        aws_access_key_id=CREDENTIALS.access_key,
        aws_secret_access_key=CREDENTIALS.secret_key,
        region_name=REGION,
    )
    client = session.client("dynamodb", config=client_config())
    if json_body:
        encode_batch_writes_with_json(client)
    return client


def _items(count: int) -> list[dict[str, Any]]:
    """Items as records.ItemBuilder builds them: every attribute-value type JSON records produce."""
    return [
        {
            "pk": {"S": f"data/ü-{n}.jsonl"},
            "sk": {"S": f"{n:012d}"},
            "name": {"S": 'quote " and \\ and \u00e9 and \U0001f600'},
            "amount": {"N": "12.50"},
            "active": {"BOOL": n % 2 == 0},
            "missing": {"NULL": True},
            "tags": {"L": [{"S": "a"}, {"N": "1"}, {"M": {"deep": {"L": []}}}]},
            "address": {"M": {"city": {"S": "Lisbon"}, "zip": {"S": "01234"}}},
        }
        for n in range(count)
    ]


def _write(client: Any, request_items: dict[str, Any]) -> Any:
    sent = SentRequests(client)
    client.batch_write_item(RequestItems=request_items, ReturnConsumedCapacity="TOTAL")
    [request] = sent.sent
    return request


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _signature_matches(request: Any) -> bool:
    """Recompute SigV4 over the request as sent (its body, its signed headers, its timestamp)."""
    sent = {name: _text(value) for name, value in request.headers.items()}
    authorization = sent["Authorization"]
    signed = authorization.split("SignedHeaders=", 1)[1].split(",", 1)[0].split(";")
    headers = {name: value for name, value in sent.items() if name.lower() in signed}
    replay = AWSRequest(method=request.method, url=request.url, data=request.body, headers=headers)
    replay.context["timestamp"] = sent["X-Amz-Date"]
    signer = SigV4Auth(CREDENTIALS, "dynamodb", REGION)
    signature = signer.signature(signer.string_to_sign(replay, signer.canonical_request(replay)), replay)
    return authorization.endswith(f"Signature={signature}")


def test_the_body_is_the_one_botocore_serializes_and_the_signature_covers_it() -> None:
    request_items = {TABLE: [{"PutRequest": {"Item": item}} for item in _items(25)]}

    by_botocore = _write(_client(json_body=False), request_items)
    by_json = _write(_client(json_body=True), request_items)

    assert by_json.body == by_botocore.body
    assert by_json.headers["Content-Length"] == by_botocore.headers["Content-Length"]
    assert _signature_matches(by_json)
    assert request_items[TABLE][0]["PutRequest"]["Item"]["pk"] == {
        "S": "data/ü-0.jsonl"
    }  # caller's untouched


def test_binary_values_are_left_to_botocore_which_encodes_them_in_base64() -> None:
    request_items = {TABLE: [{"PutRequest": {"Item": {"pk": {"S": "k"}, "blob": {"B": b"\x00\xff"}}}}]}

    sent = _write(_client(json_body=True), request_items)

    assert base64.b64encode(b"\x00\xff") in sent.body
    assert sent.body == _write(_client(json_body=False), request_items).body


def test_the_record_store_writes_every_item_through_a_json_body_client(world: World) -> None:
    dynamodb = boto3.client("dynamodb", region_name=REGION, config=client_config())  # moto's, as wired
    encode_batch_writes_with_json(dynamodb)
    store = DynamoRecordStore(dynamodb, TABLE)
    items = _items(60)

    writer = store.writer()
    for item in items:
        writer.put(item)
    writer.flush()

    stored = {
        (item["pk"]["S"], item["sk"]["S"]): item
        for page in world.dynamodb.get_paginator("scan").paginate(TableName=TABLE)
        for item in page["Items"]
    }
    assert stored == {(item["pk"]["S"], item["sk"]["S"]): item for item in items}

"""BatchWriteItem bodies encoded by `json.dumps` at botocore's documented events, not by its shape walk.

botocore's JSON serializer walks the service model for every attribute value of every item of a
25-item batch before calling `json.dumps` on the result: ~2/3 of the ingest function's CPU per record
(`make bench`, CPU per record). For BatchWriteItem items that are already in DynamoDB's attribute-value
form (ours are: `records.ItemBuilder` builds them, numbers as strings), that walk returns the same
mapping, so `json.dumps` of the parameters yields the exact bytes botocore would send. Two documented
events of the botocore event system (https://docs.aws.amazon.com/botocore/latest/topics/events.html)
do it without touching botocore's internals:

- `before-parameter-build` ("allows handlers to modify existing parameters"): encode the parameters
  with `json.dumps` as botocore's serializer does, keep the body in the call's context, and hand the
  serializer the same tables with no items (nothing to walk);
- `before-sign` ("allows mutating the request before signing"): put the body back, so SigV4 signs,
  and the request sends, exactly those bytes (every attempt, retries included).

Parameters `json.dumps` cannot encode as botocore would (binary values: bytes, which botocore encodes
in base64) raise TypeError and are left to botocore's serializer untouched.
"""

from __future__ import annotations

import json
from typing import Any

_BODY = "eventpipe_json_body"
_OPERATION = "dynamodb.BatchWriteItem"


def _encode(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    try:
        # botocore's JSONSerializer: json.dumps(body).encode("utf-8"), default separators: same bytes.
        # Items are trees built by our converter, never cyclic: skipping the cycle check halves the cost.
        body = json.dumps(params, check_circular=False).encode("utf-8")
    except TypeError:  # binary values: botocore's serializer base64-encodes them
        return
    context[_BODY] = body
    # Same tables (endpoint resolution reads them), no items: the serializer has nothing to walk.
    params["RequestItems"] = {table: [] for table in params["RequestItems"]}


def _restore(request: Any, **_: Any) -> None:
    body = request.context.get(_BODY)
    if body is not None:
        request.data = body


def encode_batch_writes_with_json(client: Any) -> None:
    """Register both handlers on a botocore DynamoDB client (its own event system: other clients and
    sessions are untouched). For a client created with `parameter_validation=False` (ours are): the
    validator would check the parameters the serializer gets, and refuse (loudly) tables with no items."""
    events = client.meta.events
    events.register(f"before-parameter-build.{_OPERATION}", _encode, unique_id="eventpipe-json-body-encode")
    events.register(f"before-sign.{_OPERATION}", _restore, unique_id="eventpipe-json-body-restore")

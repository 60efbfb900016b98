"""How the event engine reaches its targets: the emulator's own AWS APIs, like EventBridge's."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from eventpipe.local.auth import LocalCredentials
from eventpipe.local.engine import DeliveryError


class AwsSenders:
    """engine.Senders over boto3 clients pointed at the emulator; failures become DeliveryError."""

    def __init__(
        self,
        *,
        endpoint_url: str,
        region: str,
        account: str,
        lambda_runtime: Callable[[], Any],
        credentials: LocalCredentials,
    ) -> None:
        self._endpoint, self._account = endpoint_url.rstrip("/"), account
        session = boto3.session.Session(region_name=region, **credentials.boto3_kwargs())
        # One attempt per call: retrying is the engine's job, with the target's RetryPolicy.
        config = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=30)
        self._sqs = session.client("sqs", endpoint_url=endpoint_url, config=config)
        self._sns = session.client("sns", endpoint_url=endpoint_url, config=config)
        self._sfn = session.client("stepfunctions", endpoint_url=endpoint_url, config=config)
        self._lambda_runtime = lambda_runtime

    def sqs_send(
        self,
        queue_arn: str,
        body: str,
        *,
        attributes: dict[str, str] | None = None,
        group_id: str | None = None,
    ) -> None:
        name = queue_arn.rsplit(":", 1)[-1]
        request: dict[str, Any] = {
            "QueueUrl": f"{self._endpoint}/{self._account}/{name}",
            "MessageBody": body,
        }
        if attributes:
            request["MessageAttributes"] = {
                key: {"DataType": "String", "StringValue": value} for key, value in attributes.items()
            }
        if group_id:
            request["MessageGroupId"] = group_id
        _call(self._sqs.send_message, **request)

    def sns_publish(self, topic_arn: str, body: str) -> None:
        _call(self._sns.publish, TopicArn=topic_arn, Message=body)

    def sfn_start(self, state_machine_arn: str, body: str) -> None:
        _call(
            self._sfn.start_execution, stateMachineArn=state_machine_arn, name=str(uuid.uuid4()), input=body
        )

    def lambda_invoke_async(self, function_arn: str, payload: Any) -> None:
        from eventpipe.local.lambda_runtime import FunctionNotFoundError

        runtime = self._lambda_runtime()
        if runtime is None:
            raise DeliveryError("Lambda.ServiceException", "The local Lambda runtime is not running.")
        try:
            runtime.invoke_async(function_arn, payload)
        except FunctionNotFoundError:
            raise DeliveryError("ResourceNotFoundException", f"Function not found: {function_arn}") from None
        except RuntimeError as error:
            raise DeliveryError("Lambda.ServiceException", str(error)) from error


def _call(operation: Callable[..., Any], **request: Any) -> None:
    try:
        operation(**request)
    except ClientError as error:
        details = error.response.get("Error", {})
        raise DeliveryError(
            str(details.get("Code", "ClientError")), str(details.get("Message") or json.dumps(details))
        ) from error
    except BotoCoreError as error:
        raise DeliveryError("ServiceUnavailable", str(error)) from error

"""The one way local mode sends to a target or a destination: the emulator's own AWS APIs.

The EventBridge engine delivers to rule targets through it, and the Lambda runtime sends its
invocation records to async destinations (SQS, SNS) through it, so both reach a queue or a topic the
same way a client would."""

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
        credentials: LocalCredentials,
        lambda_runtime: Callable[[], Any] = lambda: None,
        attempts: int = 1,
    ) -> None:
        self._endpoint = endpoint_url.rstrip("/")
        session = boto3.session.Session(region_name=region, **credentials.boto3_kwargs())
        # One attempt per call by default: retrying is the engine's job, with the target's RetryPolicy.
        config = Config(
            retries={"max_attempts": attempts, "mode": "standard"}, connect_timeout=5, read_timeout=30
        )
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
        parts = queue_arn.split(":", 5)
        if len(parts) < 6:
            raise DeliveryError("InvalidTarget", f"Queue ARN {queue_arn} is not valid.")
        account, name = parts[4], parts[5]
        request: dict[str, Any] = {
            "QueueUrl": f"{self._endpoint}/{account}/{name}",
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

    def send_to_destination(self, destination_arn: str, body: str) -> None:
        """Send `body` to an SQS queue or an SNS topic (Lambda's async destinations) by its ARN."""
        service = destination_arn.split(":")[2] if destination_arn.count(":") >= 5 else ""
        if service == "sqs":
            self.sqs_send(destination_arn, body)
        elif service == "sns":
            self.sns_publish(destination_arn, body)
        else:
            raise DeliveryError(
                "UnsupportedTarget", f"Destination {destination_arn} is not supported locally."
            )

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

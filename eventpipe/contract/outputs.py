"""The stack's output names: what infra writes and what the operator CLI, local mode and bench read.

Stack-wide outputs have fixed names; each consumer's outputs are its name in PascalCase followed by a
suffix (`delete-sync` -> `DeleteSyncRuleArn`). The list with meanings is in docs/architecture.md.
"""

from __future__ import annotations

import re
from typing import Final

# Stack-wide outputs.
BUCKET_NAME: Final = "BucketName"
REJECTS_BUCKET_NAME: Final = "RejectsBucketName"
ACCESS_LOGS_BUCKET_NAME: Final = "AccessLogsBucketName"
EVENT_BUS_NAME: Final = "EventBusName"
EVENT_BUS_ARN: Final = "EventBusArn"
ARCHIVE_NAME: Final = "ArchiveName"
ARCHIVE_ARN: Final = "ArchiveArn"
TABLE_NAME: Final = "TableName"
ALARM_TOPIC_ARN: Final = "AlarmTopicArn"

# Per-consumer output suffixes (after the consumer's PascalCase name).
RULE_ARN: Final = "RuleArn"
RULE_NAME: Final = "RuleName"
DLQ_URL: Final = "DlqUrl"
TARGET_ARN: Final = "TargetArn"
FUNCTION_NAME: Final = "FunctionName"
FAILURE_QUEUE_URL: Final = "FailureQueueUrl"
QUEUE_URL: Final = "QueueUrl"

# The forwarding rule (default bus -> project bus) has outputs like a consumer's, under this prefix.
FORWARDER_PREFIX: Final = "Forwarder"
# The fan-out's range worker (when a consumer starts fan-outs): `RangeWorkerFunctionName`,
# `RangeWorkerQueueUrl` (the range work queue) and `RangeWorkerDlqUrl` (its dead-letter queue).
RANGE_WORKER_PREFIX: Final = "RangeWorker"


def pascal_case(name: str) -> str:
    """A consumer name as used in output keys and construct ids: `delete-sync` -> `DeleteSync`."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[-_]", name) if part)


def kebab_case(pascal: str) -> str:
    """Inverse of `pascal_case` for names found only in the outputs: `DeleteSync` -> `delete-sync`."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", pascal).lower()


def consumer_output(name: str, suffix: str) -> str:
    """The output key of one of a consumer's resources: `consumer_output("ingest", DLQ_URL)`."""
    return pascal_case(name) + suffix

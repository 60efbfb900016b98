"""The environment variable names of every consumer function: written once here, set by the stack
(infra/constructs/consumer_function.py), read by `settings.py`, and reproduced by the benchmark.

No imports, so the CDK app can import it without loading anything of the Lambda code.
"""

TABLE_NAME = "TABLE_NAME"
REJECTS_BUCKET = "REJECTS_BUCKET"
MAX_JSON_ARRAY_BYTES = "MAX_JSON_ARRAY_BYTES"
# Fan-out (functions/core/use_cases/fan_out.py): the range work queue (ingest only; unset = never fan
# out), the object size above which an object is split, and BatchWriteItem requests kept in flight.
FANOUT_QUEUE_URL = "FANOUT_QUEUE_URL"
FANOUT_THRESHOLD_BYTES = "FANOUT_THRESHOLD_BYTES"
WRITERS = "WRITERS"
# Read by Powertools itself (https://docs.powertools.aws.dev/lambda/python/latest/#environment-variables).
POWERTOOLS_SERVICE_NAME = "POWERTOOLS_SERVICE_NAME"
POWERTOOLS_METRICS_NAMESPACE = "POWERTOOLS_METRICS_NAMESPACE"
POWERTOOLS_LOG_LEVEL = "POWERTOOLS_LOG_LEVEL"
POWERTOOLS_TRACE_DISABLED = "POWERTOOLS_TRACE_DISABLED"

"""Buckets and table: private, encrypted, versioned, native EventBridge notifications, stage removal."""

from __future__ import annotations

import json
from typing import Any

from infra_template import Synthesized, denies_insecure_transport

BLOCK_ALL = {
    "BlockPublicAcls": True,
    "BlockPublicPolicy": True,
    "IgnorePublicAcls": True,
    "RestrictPublicBuckets": True,
}


def bucket_id(synth: Synthesized, output: str) -> str:
    return synth.output_ref(output)


def test_ingest_bucket_sends_events_to_eventbridge_through_the_native_property(dev: Synthesized) -> None:
    props = dev.props(bucket_id(dev, "BucketName"))

    assert props["NotificationConfiguration"] == {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}
    assert not [r for r in dev.resources.values() if r["Type"] == "Custom::S3BucketNotifications"]


def test_rejects_bucket_has_no_notifications_so_reports_never_trigger_ingest(dev: Synthesized) -> None:
    assert "NotificationConfiguration" not in dev.props(bucket_id(dev, "RejectsBucketName"))


def test_data_buckets_are_private_encrypted_versioned_and_tls_only(dev: Synthesized, dev_config: Any) -> None:
    for output in ("BucketName", "RejectsBucketName"):
        logical_id = bucket_id(dev, output)
        props = dev.props(logical_id)

        assert props["PublicAccessBlockConfiguration"] == BLOCK_ALL, output
        encryption = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256", output
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}, output
        assert denies_insecure_transport(dev, "AWS::S3::BucketPolicy", "Bucket", logical_id), output
        rules = {rule["Id"]: rule for rule in props["LifecycleConfiguration"]["Rules"]}
        # (the rejects bucket also expires abandoned fan-out parts: test_stack_fanout.py)
        assert set(rules) - {"expire-noncurrent-versions"} <= {"expire-abandoned-fanout-parts"}, output
        rule = rules["expire-noncurrent-versions"]
        assert rule["NoncurrentVersionExpiration"] == {
            "NoncurrentDays": dev_config.noncurrent_version_expiration_days
        }, output
        assert rule["Status"] == "Enabled"


def test_data_buckets_write_server_access_logs_to_the_log_bucket(dev: Synthesized) -> None:
    logs_id = bucket_id(dev, "AccessLogsBucketName")

    for output in ("BucketName", "RejectsBucketName"):
        logging = dev.props(bucket_id(dev, output))["LoggingConfiguration"]
        assert logging["DestinationBucketName"] == {"Ref": logs_id}, output

    logs = dev.props(logs_id)
    assert logs["PublicAccessBlockConfiguration"] == BLOCK_ALL
    assert logs["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] == 90


def test_dev_buckets_can_be_destroyed_without_an_auto_delete_custom_resource(dev: Synthesized) -> None:
    for logical_id in dev.of_type("AWS::S3::Bucket"):
        assert dev.resources[logical_id]["DeletionPolicy"] == "Delete", logical_id
    assert not any(r["Type"].startswith("Custom::") for r in dev.resources.values())


def test_prod_retains_buckets_and_table(kinds: Synthesized) -> None:
    for logical_id in [*kinds.of_type("AWS::S3::Bucket"), *kinds.of_type("AWS::DynamoDB::Table")]:
        assert kinds.resources[logical_id]["DeletionPolicy"] == "Retain", logical_id
        assert kinds.resources[logical_id]["UpdateReplacePolicy"] == "Retain", logical_id


def test_table_keys_and_owner_index_follow_the_contract(dev: Synthesized) -> None:
    props = dev.props(dev.output_ref("TableName"))

    assert props["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    (index,) = props["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "by-owner"
    assert index["KeySchema"] == [{"AttributeName": "owner", "KeyType": "HASH"}]
    assert index["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    assert {"AttributeName": "owner", "AttributeType": "S"} in props["AttributeDefinitions"]


def test_table_is_on_demand_with_pitr_and_encryption(dev: Synthesized) -> None:
    props = dev.props(dev.output_ref("TableName"))

    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["SSESpecification"]["SSEEnabled"] is True


def test_deletion_protection_only_in_prod(dev: Synthesized, kinds: Synthesized) -> None:
    assert dev.props(dev.output_ref("TableName"))["DeletionProtectionEnabled"] is False
    assert kinds.props(kinds.output_ref("TableName"))["DeletionProtectionEnabled"] is True
    assert dev.resources[dev.output_ref("TableName")]["DeletionPolicy"] == "Delete"


def termination_protection(synth: Synthesized) -> bool:
    manifest = json.loads((synth.outdir / "manifest.json").read_text())
    return manifest["artifacts"][synth.stack_name]["properties"]["terminationProtection"]


def test_only_a_data_retaining_stack_has_termination_protection(dev: Synthesized, kinds: Synthesized) -> None:
    assert termination_protection(dev) is False
    assert termination_protection(kinds) is True


def evidence_queues(synth: Synthesized) -> list[str]:
    """Every dead-letter and failure queue: where failed events wait for an operator."""
    keys = [k for k in synth.outputs if k.endswith(("DlqUrl", "FailureQueueUrl"))]
    return [synth.output_ref(k) for k in keys]


def test_prod_keeps_its_dead_letters_failure_records_and_topic_key(kinds: Synthesized) -> None:
    retained = [*evidence_queues(kinds), *kinds.of_type("AWS::KMS::Key")]

    assert len(retained) > len(kinds.consumer_resources)  # every consumer's DLQ, the forwarder's, ...
    for logical_id in retained:
        assert kinds.resources[logical_id]["DeletionPolicy"] == "Retain", logical_id
        assert kinds.resources[logical_id]["UpdateReplacePolicy"] == "Retain", logical_id


def test_dev_deletes_its_queues_and_key_with_the_stack(dev: Synthesized) -> None:
    for logical_id in [*evidence_queues(dev), *dev.of_type("AWS::KMS::Key")]:
        assert dev.resources[logical_id]["DeletionPolicy"] == "Delete", logical_id


def test_each_data_bucket_logs_under_its_own_prefix(dev: Synthesized) -> None:
    logs_bucket = dev.output_ref("AccessLogsBucketName")
    logging = {
        key: dev.props(dev.output_ref(key))["LoggingConfiguration"]
        for key in ("BucketName", "RejectsBucketName")
    }

    assert all(c["DestinationBucketName"] == {"Ref": logs_bucket} for c in logging.values())
    prefixes = [c["LogFilePrefix"] for c in logging.values()]
    assert prefixes == ["ingest/", "rejects/"]

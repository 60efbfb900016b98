"""The records table (model in docs/architecture.md and docs/data-model.md)."""

from __future__ import annotations

from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from infra.constructs.secure_bucket import removal_policy

OWNER_INDEX = "by-owner"


class RecordsTable(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, retain_data: bool) -> None:
        super().__init__(scope, construct_id)
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            deletion_protection=retain_data,
            removal_policy=removal_policy(retain_data=retain_data),
        )
        # Finds the items an object currently owns (delete / overwrite), also under natural keys.
        self.table.add_global_secondary_index(
            index_name=OWNER_INDEX,
            partition_key=dynamodb.Attribute(name="owner", type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.KEYS_ONLY,
        )

    @property
    def owner_index_arn(self) -> str:
        return f"{self.table.table_arn}/index/{OWNER_INDEX}"

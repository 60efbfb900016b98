"""SNS topics encrypted with one customer-managed key that CloudWatch and EventBridge may use.

An AWS-managed SNS key cannot be used by CloudWatch alarms or EventBridge rules (its policy cannot be
changed), so alarms would silently not be delivered: hence a customer key with rotation.
"""

from __future__ import annotations

from aws_cdk import Aws, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

# Explicit key administration actions for the account (no `kms:*`): enough for CloudFormation and
# operators to manage, rotate and delete the key, not to decrypt with it.
KEY_ADMIN_ACTIONS = (
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:CreateGrant",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:RetireGrant",
    "kms:RevokeGrant",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
)
PUBLISHER_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
PUBLISHER_SERVICES = ("cloudwatch.amazonaws.com", "events.amazonaws.com")


class EncryptedTopics(Construct):
    """Owns the key; `topic()` creates a TLS-only topic encrypted with it (in any scope)."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            description="eventpipe SNS topics (alarms, topic consumers)",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,
            policy=iam.PolicyDocument(
                statements=[
                    iam.PolicyStatement(
                        sid="KeyAdministration",
                        principals=[iam.AccountRootPrincipal()],
                        actions=list(KEY_ADMIN_ACTIONS),
                        resources=["*"],  # in a key policy, "*" means this key
                    ),
                    iam.PolicyStatement(
                        sid="PublishersOfThisAccount",
                        principals=[iam.ServicePrincipal(service) for service in PUBLISHER_SERVICES],
                        actions=list(PUBLISHER_ACTIONS),
                        resources=["*"],
                        conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
                    ),
                    # Operators and roles of this account (with sns:Publish in their own IAM policy)
                    # publish through SNS only, e.g. `eventpipe dlq redrive` to a topic consumer.
                    iam.PolicyStatement(
                        sid="PublishThroughSnsFromThisAccount",
                        principals=[iam.AccountRootPrincipal()],
                        actions=list(PUBLISHER_ACTIONS),
                        resources=["*"],
                        conditions={"StringEquals": {"kms:ViaService": f"sns.{Aws.REGION}.amazonaws.com"}},
                    ),
                ]
            ),
        )

    def topic(self, scope: Construct, construct_id: str, *, display_name: str) -> sns.Topic:
        return sns.Topic(
            scope, construct_id, display_name=display_name, master_key=self.key, enforce_ssl=True
        )

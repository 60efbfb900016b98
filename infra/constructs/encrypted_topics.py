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


class EncryptedTopics(Construct):
    """Owns the key; `topic()` creates a TLS-only topic encrypted with it (in any scope). The key is
    created with the first topic, so a stack that reuses an existing alarm topic and has no topic
    consumer has no key to pay for.

    Key policy, per the SNS developer guide ("Managing Amazon SNS encryption keys and costs", section
    "Enable compatibility between event sources from AWS services and encrypted topics",
    https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services):
    - CloudWatch (alarms) may use the key for alarms of this account (`aws:SourceAccount`).
    - EventBridge (topic consumers) gets the key WITHOUT `aws:SourceAccount` / `aws:SourceArn` /
      `aws:SourceOrgID`: the guide says those conditions in a key policy are not supported for
      EventBridge-to-encrypted-topic delivery (every delivery would fail). Which rule may publish is
      scoped instead by each topic's own policy (`aws:SourceArn` = the consumer's rule), and the
      key only protects this project's topics.
    """

    def __init__(self, scope: Construct, construct_id: str, *, retain: bool) -> None:
        super().__init__(scope, construct_id)
        self._retain = retain
        self._key: kms.Key | None = None
        self._eventbridge_allowed = False

    @property
    def key(self) -> kms.Key:
        if self._key is None:
            self._key = self._build_key()
        return self._key

    def _build_key(self) -> kms.Key:
        return kms.Key(
            self,
            "Key",
            description="eventpipe SNS topics (alarms, topic consumers)",
            enable_key_rotation=True,
            # A retained stage keeps its key: a deleted key makes whatever it encrypted unreadable.
            removal_policy=RemovalPolicy.RETAIN if self._retain else RemovalPolicy.DESTROY,
            policy=iam.PolicyDocument(
                statements=[
                    iam.PolicyStatement(
                        sid="KeyAdministration",
                        principals=[iam.AccountRootPrincipal()],
                        actions=list(KEY_ADMIN_ACTIONS),
                        resources=["*"],  # in a key policy, "*" means this key
                    ),
                    iam.PolicyStatement(
                        sid="AlarmsOfThisAccount",
                        principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
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

    def topic(
        self, scope: Construct, construct_id: str, *, display_name: str, eventbridge_publishes: bool = False
    ) -> sns.Topic:
        """`eventbridge_publishes=True` (a topic consumer) lets EventBridge use the key too."""
        if eventbridge_publishes:
            self._allow_eventbridge()
        return sns.Topic(
            scope, construct_id, display_name=display_name, master_key=self.key, enforce_ssl=True
        )

    def _allow_eventbridge(self) -> None:
        if self._eventbridge_allowed:
            return
        # No source condition: not supported for EventBridge (see the class docstring).
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="EventBridgeRulesPublishingToTopics",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=list(PUBLISHER_ACTIONS),
                resources=["*"],
            )
        )
        self._eventbridge_allowed = True

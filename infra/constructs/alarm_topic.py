"""Where every alarm of the stack notifies (optionally an email subscription from config)."""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from infra.constructs.encrypted_topics import EncryptedTopics


class AlarmTopic(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, topics: EncryptedTopics, email: str | None
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = topics.topic(self, "Topic", display_name="eventpipe alarms")
        # The TLS-only policy replaces SNS's default topic policy, so CloudWatch needs an explicit allow.
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="PublishFromAlarmsOfThisAccount",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            )
        )
        if email:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))

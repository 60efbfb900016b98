"""Where every alarm of the stack notifies: a topic of our own (optionally with an email subscription
from config), or an existing topic given by ARN (`alarm_topic_arn`, e.g. a team's paging topic).

An existing topic must already let CloudWatch publish to it (topic policy, and its KMS key policy if
it is encrypted): this stack cannot change another stack's topic.
"""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from infra.constructs.encrypted_topics import EncryptedTopics


class AlarmTopic(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        topics: EncryptedTopics,
        email: str | None,
        existing_topic_arn: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        if existing_topic_arn is not None:
            if email:
                raise ValueError("give an alarm email or an existing alarm topic, not both")
            self.topic: sns.ITopic = sns.Topic.from_topic_arn(self, "Topic", existing_topic_arn)
            return
        topic = topics.topic(self, "Topic", display_name="eventpipe alarms")
        # The TLS-only policy replaces SNS's default topic policy, so CloudWatch needs an explicit allow.
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="PublishFromAlarmsOfThisAccount",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            )
        )
        if email:
            topic.add_subscription(subscriptions.EmailSubscription(email))
        self.topic = topic

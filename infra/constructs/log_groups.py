"""Explicit log groups: retention and removal set here (no `logRetention` custom resource)."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_logs as logs
from constructs import Construct

R = logs.RetentionDays
# jsii enums carry names, not day counts; config speaks in days (the values CloudWatch accepts).
RETENTION_BY_DAYS = {
    1: R.ONE_DAY, 3: R.THREE_DAYS, 5: R.FIVE_DAYS, 7: R.ONE_WEEK, 14: R.TWO_WEEKS, 30: R.ONE_MONTH,
    60: R.TWO_MONTHS, 90: R.THREE_MONTHS, 120: R.FOUR_MONTHS, 150: R.FIVE_MONTHS, 180: R.SIX_MONTHS,
    365: R.ONE_YEAR, 400: R.THIRTEEN_MONTHS, 545: R.EIGHTEEN_MONTHS, 731: R.TWO_YEARS,
    1096: R.THREE_YEARS, 1827: R.FIVE_YEARS, 3653: R.TEN_YEARS,
}  # fmt: skip


def log_group(scope: Construct, construct_id: str, *, retention_days: int, retain: bool) -> logs.LogGroup:
    return logs.LogGroup(
        scope,
        construct_id,
        retention=RETENTION_BY_DAYS[retention_days],
        removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
    )

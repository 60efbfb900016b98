"""cdk-nag wiring: the AwsSolutions pack on the whole app, and scoped acknowledgements.

Acknowledgements are attached to the construct that causes a finding and name the finding id
(with its `[Resource::...]` detail when the rule reports one), never a whole rule for the stack.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct


def enable_nag(app: IConstruct) -> None:
    """Run the AwsSolutions checks at synth; an unacknowledged finding fails synthesis."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def acknowledge(scope: IConstruct, finding_id: str, reason: str) -> None:
    Validations.of(scope).acknowledge(Acknowledgment(id=finding_id, reason=reason))

"""moto CloudFormation patch (H7): `Ref` to an AWS::Events::EventBus or AWS::Events::Archive yields its
name, as on AWS (moto returns the Python object's repr).

See docs/local-mode.md for what each one reproduces and the test that shows it."""

from __future__ import annotations

from eventpipe.local.moto_patches.patching import replace


def install() -> None:
    from moto.events import models as events_models

    replace(events_models.EventBus, "physical_resource_id", property(lambda self: self.name), add=True)
    replace(events_models.Archive, "physical_resource_id", property(lambda self: self.name), add=True)

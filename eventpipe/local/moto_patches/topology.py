"""The EventBridge engine's read view (`engine.Topology`) of moto's in-process EventBridge backend."""

from __future__ import annotations

from typing import Any

from eventpipe.local.engine import ArchiveView, RuleView


class MotoTopology:
    """engine.Topology over moto's in-process EventBridge backend."""

    def __init__(self, account: str, region: str) -> None:
        self.account, self.region = account, region

    def _backend(self) -> Any:
        from moto.events.models import events_backends

        return events_backends[self.account][self.region]

    def rules(self, bus: str) -> list[RuleView]:
        event_bus = self._backend().event_buses.get(bus)
        if event_bus is None:
            return []
        views = []
        for rule in list(event_bus.rules.values()):
            if rule.managed_by and rule.name.startswith("Events-Archive-"):
                continue  # moto's archive rule: archiving is done by the engine itself
            pattern = rule.event_pattern.get_pattern() if rule.event_pattern.dump() else None
            views.append(
                RuleView(
                    name=rule.name,
                    arn=rule.arn,
                    bus=bus,
                    pattern=pattern,
                    enabled=rule.state == "ENABLED",
                    targets=tuple(rule.targets),
                )
            )
        return views

    def archives(self, bus: str) -> list[ArchiveView]:
        return [
            ArchiveView(
                name=a.name,
                arn=a.arn,
                bus=a.event_bus_name,
                pattern=a.event_pattern.get_pattern() or None,
                enabled=a.state == "ENABLED",
            )
            for a in list(self._backend().archives.values())
            if a.event_bus_name == bus
        ]

    def bus_exists(self, bus: str) -> bool:
        return bus in self._backend().event_buses

    def on_archived(self, archive: str, event: dict[str, Any]) -> None:
        stored = self._backend().archives.get(archive)
        if stored is not None:
            stored.events.append(event)  # keeps DescribeArchive's EventCount right

"""moto EventBridge replay patches (H4): StartReplay runs on the local engine's background thread,
honouring the time window and FilterArns; DescribeReplay/ListReplays report its progress and
CancelReplay moves it to CANCELLING (a COMPLETED replay cannot be cancelled, like on AWS).

See docs/local-mode.md for what each one reproduces and the test that shows it."""

from __future__ import annotations

from typing import Any

from eventpipe.local.engine import ReplayRun
from eventpipe.local.moto_patches.events import epoch
from eventpipe.local.moto_patches.hooks import Hooks
from eventpipe.local.moto_patches.patching import replace


def install(hooks: Hooks) -> None:
    from moto.events import models as events_models
    from moto.events.exceptions import IllegalStatusException

    def replay_events(self: Any, archive: Any) -> None:  # H4
        if hooks.engine is None:
            raise IllegalStatusException("The local event engine is not running.")
        filter_arns = (self.destination or {}).get("FilterArns")
        self._eventpipe_run = ReplayRun(
            name=self.name,
            archive=archive.name,
            bus=self.destination["Arn"].split("/")[-1],
            start=epoch(self.event_start_time),
            end=epoch(self.event_end_time),
            filter_arns=frozenset(filter_arns) if filter_arns else None,
        )
        hooks.engine.start_replay(self._eventpipe_run)

    original_describe_short = events_models.Replay.describe_short

    def describe_short(self: Any) -> dict[str, Any]:
        run: ReplayRun | None = getattr(self, "_eventpipe_run", None)
        result: dict[str, Any] = original_describe_short(self)
        if run is not None:
            result["State"] = run.state
            result["ReplayEndTime"] = run.replay_end
            if run.state_reason:
                result["StateReason"] = run.state_reason
            if run.last_replayed is not None:
                result["EventLastReplayedTime"] = run.last_replayed
        return {k: v for k, v in result.items() if v is not None}

    def list_replays(
        self: Any, name_prefix: str | None, source_arn: str | None, state: str | None
    ) -> list[dict[str, Any]]:
        if [name_prefix, source_arn, state].count(None) < 2:
            raise events_models.ValidationException(
                "At most one filter is allowed for ListReplays. "
                "Use either : State, EventSourceArn, or NamePrefix."
            )
        found = [replay.describe_short() for replay in self.replays.values()]
        return [
            r
            for r in found
            if (name_prefix is None or r["ReplayName"].startswith(name_prefix))
            and (source_arn is None or r["EventSourceArn"] == source_arn)
            and (state is None or r["State"] == state)
        ]

    def cancel_replay(self: Any, name: str) -> dict[str, str]:
        replay = self._get_replay(name)
        run: ReplayRun | None = getattr(replay, "_eventpipe_run", None)
        if run is None or not run.request_cancel():
            raise IllegalStatusException(f"Replay {name} is not in a valid state for this operation.")
        return {"ReplayArn": replay.arn, "State": "CANCELLING"}

    replace(events_models.EventsBackend, "list_replays", list_replays)
    replace(events_models.EventsBackend, "cancel_replay", cancel_replay)
    replace(events_models.Replay, "replay_events", replay_events)
    replace(events_models.Replay, "describe_short", describe_short)

"""Template drift shows up as a snapshot diff (update with `pytest --snapshot-update` when intended).

The snapshot covers the shared stack and the consumers shipped with it; consumers added later
(`eventpipe consumers new`) are left out, so adding one does not break it: the consumer walk in
test_stack_consumers.py checks them.
"""

from __future__ import annotations

import json
import re

from infra_template import Synthesized

ASSET_HASH = re.compile(r"\b[0-9a-f]{64}\b")
SNAPSHOT_CONSUMERS = ("ingest", "delete-sync", "audit")


def shipped_only(synth: Synthesized) -> dict:
    """The template without the resources and outputs of consumers added after the snapshot."""
    later = [name for name in synth.consumer_resources if name not in SNAPSHOT_CONSUMERS]
    dropped_resources = set().union(*(synth.consumer_resources[name] for name in later))
    dropped_outputs = set().union(*(synth.consumer_outputs[name] for name in later))
    template = dict(synth.template)
    template["Resources"] = {k: v for k, v in synth.resources.items() if k not in dropped_resources}
    template["Outputs"] = {k: v for k, v in template["Outputs"].items() if k not in dropped_outputs}
    return template


def masked(template: dict) -> str:
    """The template as stable text: asset hashes change with any edit under functions/ or the layer."""
    return ASSET_HASH.sub("<asset-hash>", json.dumps(template, indent=1, sort_keys=True))


def test_dev_template_matches_snapshot(dev: Synthesized, snapshot) -> None:  # type: ignore[no-untyped-def]
    assert masked(shipped_only(dev)) == snapshot


def test_later_consumers_are_left_out_of_the_snapshot(kinds: Synthesized) -> None:
    template = shipped_only(kinds)

    assert "ThumbnailsRuleArn" not in template["Outputs"]
    assert "IngestRuleArn" in template["Outputs"]
    assert not kinds.consumer_resources["thumbnails"] & set(template["Resources"])
    assert kinds.consumer_resources["ingest"] <= set(template["Resources"])
    # Every resource of a later consumer is known, so nothing of it leaks into the snapshot.
    assert len(kinds.consumer_resources["thumbnails"]) >= 10


def test_masking_hides_only_asset_hashes(dev: Synthesized) -> None:
    text = masked(dev.template)

    assert "<asset-hash>.zip" in text
    assert ASSET_HASH.search(text) is None
    assert json.loads(text)["Outputs"].keys() == dev.template["Outputs"].keys()

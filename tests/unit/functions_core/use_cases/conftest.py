"""Fixtures the fan-out tests share: the range work queue and an S3 reader that can be made to fail."""

from __future__ import annotations

import pytest

from ..conftest import World
from .test_fan_out import BreakingReader, ListQueue


@pytest.fixture
def queue() -> ListQueue:
    return ListQueue()


@pytest.fixture
def reader(world: World) -> BreakingReader:
    return BreakingReader(world.s3)

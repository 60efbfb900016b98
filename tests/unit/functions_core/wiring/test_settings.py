"""Settings from the environment: the pool size of the batch writers (WRITERS) and its wiring."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from functions.core.adapters.dynamodb_batch_writer import DEFAULT_WRITERS
from functions.core.wiring import env as names
from functions.core.wiring import lambda_services, settings
from functions.core.wiring.settings import Settings, SettingsError

from ..conftest import REJECTS, TABLE, World

REQUIRED = {names.TABLE_NAME: TABLE, names.REJECTS_BUCKET: REJECTS}


def test_writers_default_to_the_pool_size_of_the_record_store() -> None:
    assert Settings.from_env(REQUIRED).writers == DEFAULT_WRITERS == 16


def test_writers_come_from_the_environment() -> None:
    assert Settings.from_env({**REQUIRED, names.WRITERS: " 4 "}).writers == 4


@pytest.mark.parametrize(
    ("raw", "message"),
    [("four", "WRITERS must be an integer, got 'four'"), ("0", "WRITERS must be at least 1, got 0")],
)
def test_a_bad_writers_value_is_a_one_line_error_naming_the_variable(raw: str, message: str) -> None:
    with pytest.raises(SettingsError) as error:
        Settings.from_env({**REQUIRED, names.WRITERS: raw})

    assert str(error.value) == message


@pytest.fixture
def clean_wiring() -> Iterator[None]:
    settings.get_settings.cache_clear()
    lambda_services.base_services.cache_clear()
    yield
    settings.get_settings.cache_clear()
    lambda_services.base_services.cache_clear()


@pytest.mark.usefixtures("clean_wiring")
def test_the_dynamodb_client_has_a_connection_for_every_writer_and_the_caller(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {**REQUIRED, names.WRITERS: "24"}.items():
        monkeypatch.setenv(name, value)

    store = lambda_services.base_services().store

    # The client the writers share (read from the store: the wiring keeps no other handle on it).
    assert store._client.meta.config.max_pool_connections == 25  # type: ignore[attr-defined]
    assert store._writers == 24  # type: ignore[attr-defined]


@pytest.mark.usefixtures("clean_wiring")
def test_what_the_cold_start_built_is_kept_out_of_garbage_collections(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)

    client = lambda_services.base_services().store._client  # type: ignore[attr-defined]
    made_later = [object()]

    # Frozen objects are in no generation: full collections no longer walk the clients' service models.
    tracked = gc.get_objects()
    assert not any(obj is client for obj in tracked)
    assert any(obj is made_later for obj in tracked)

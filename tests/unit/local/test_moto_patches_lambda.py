"""H11: Lambda configuration writes move the counter the local Lambda runtime trusts for its cache."""

from __future__ import annotations

from typing import Any

import pytest

from eventpipe.local.moto_patches import awslambda


class _Backend:
    def update_function_configuration(self, name: str) -> str:
        return f"updated {name}"

    def delete_function(self, name: str) -> None:
        raise LookupError(name)


def test_a_write_moves_the_counter_after_it_ran() -> None:
    write = awslambda.bumping(_Backend.update_function_configuration)
    before = awslambda.lambda_config_generation()

    assert write(_Backend(), "fn") == "updated fn"
    assert awslambda.lambda_config_generation() == before + 1


def test_a_failed_write_moves_the_counter_too() -> None:
    write: Any = awslambda.bumping(_Backend.delete_function)
    before = awslambda.lambda_config_generation()

    with pytest.raises(LookupError):
        write(_Backend(), "fn")
    assert awslambda.lambda_config_generation() == before + 1


def test_every_patched_write_exists_on_motos_lambda_backend() -> None:
    from moto.awslambda.models import LambdaBackend

    assert all(callable(getattr(LambdaBackend, name, None)) for name in awslambda.LAMBDA_CONFIGURATION_WRITES)

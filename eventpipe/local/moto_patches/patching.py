"""The one way a moto patch is applied: fail loudly when moto no longer has what is patched."""

from __future__ import annotations

from typing import Any


def replace(owner: Any, attribute: str, replacement: Any, *, add: bool = False) -> None:
    """Swap one moto function/attribute; every patch in this package goes through here."""
    if not add and not hasattr(owner, attribute):
        raise RuntimeError(
            f"moto changed: {owner!r} has no {attribute}; revisit eventpipe.local.moto_patches"
        )
    setattr(owner, attribute, replacement)

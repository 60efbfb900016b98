"""moto routing patch (H12): moto's dispatcher lists its package directory (a stat per service) under one
lock shared by every request to route each request; the list is read once instead. The same files are
found, only once: pure speed."""

from __future__ import annotations

from eventpipe.local.moto_patches.patching import replace


def install() -> None:  # H12
    import moto.backends as moto_backends

    modules = frozenset(moto_backends.list_of_moto_modules())

    def list_of_moto_modules() -> frozenset[str]:
        return modules

    replace(moto_backends, "list_of_moto_modules", list_of_moto_modules)

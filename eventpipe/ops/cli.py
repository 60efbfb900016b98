"""Placeholder: this area's commands are being built."""

import typer


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root CLI."""

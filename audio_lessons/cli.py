"""The ``pallay`` command."""

import click


@click.group()
def main() -> None:
    """pallay: spoken safety lessons on a phone line and an offline kiosk."""

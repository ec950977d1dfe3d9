"""The kiosk's ``pallay kiosk`` command, plugged into ``pallay`` by the entry point
``pallay.commands`` in pyproject.toml (the core never imports ``kiosk``).

Other kiosk parts add subcommands (``pallay kiosk sync``) through the entry point group
``pallay.kiosk_commands``, so this file does not need to know them.
"""

from __future__ import annotations

import logging
import signal
from importlib.metadata import entry_points

import click

from audio_lessons.errors import PallayError
from kiosk import wiring

log = logging.getLogger(__name__)


@click.group("kiosk", invoke_without_command=True)
@click.option("--keys", help="Entradas, separadas por comas: keyboard, gpio, keypad, usb, auto "
                             "(si no: [kiosk] keys).")
@click.option("--no-voice", is_flag=True, help="Solo teclas, aunque haya micrófono y modelo.")
@click.pass_context
def kiosk_command(ctx: click.Context, keys: str | None, no_voice: bool) -> None:
    """Pone en marcha el kiosco: lecciones por el parlante, botones (y voz) para elegir, hasta que se detenga.

    En reposo invita a quien pasa cada pocos minutos; cualquier botón empieza, `*` termina.
    Con --keys keyboard: dígitos, * y # son teclas, Enter es el botón para hablar, + y - el volumen.

    Ejemplo: pallay kiosk --keys keyboard
    """
    if ctx.invoked_subcommand is not None:
        return
    root = logging.getLogger()
    if root.level > logging.INFO:
        root.setLevel(logging.INFO)  # a service says what it does
    settings = ctx.obj["settings"]
    try:
        box = wiring.build(settings, tuple(keys.split(",")) if keys else None, voice=not no_voice)
    except (PallayError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: box.kiosk.stop())
    click.echo(f"Kiosk {settings.kiosk.device} running ({'*'} ends a session; Ctrl-C stops)",
               err=True)
    try:
        box.kiosk.run()
    finally:
        box.close()


for _entry in entry_points(group="pallay.kiosk_commands"):
    kiosk_command.add_command(_entry.load(), _entry.name)

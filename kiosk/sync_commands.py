"""``pallay kiosk sync``: the edge's sync with the central server, once or in the background.

Reaches ``pallay`` through the entry point ``pallay.commands`` (``kiosk``). If the kiosk's own
commands form a ``kiosk`` group too, add ``sync`` to it instead of this group.
"""

from __future__ import annotations

import dataclasses
import sys
import time

import click

from audio_lessons.config import Settings
from kiosk import sync

WATCH_TICK_S = 5.0


def _with_server(settings: Settings, server: str | None) -> Settings:
    if not server:
        return settings
    return dataclasses.replace(settings, sync=dataclasses.replace(settings.sync, server=server))


@click.command("sync")  # `pallay kiosk sync`, through pallay.kiosk_commands
@click.option("--server", help="El servidor central, p. ej. http://192.168.1.10:8000 "
                               "(si no: [sync] server).")
@click.option("--token-stdin", is_flag=True,
              help="Lee la clave de este kiosco (de `pallay kiosks add`) por la entrada estándar y la guarda.")
@click.option("--watch", is_flag=True, help="Sigue sincronizando: cada [sync] interval_minutes, "
                                            "y reintenta cada vez más espaciado tras un fallo.")
@click.pass_context
def sync_command(ctx: click.Context, server: str | None, token_stdin: bool, watch: bool) -> None:
    """Envía eventos y mensajes al servidor, trae las lecciones nuevas y las pone de una vez.

    Ejemplo: pallay kiosk sync --server http://192.168.1.10:8000
    """
    settings = _with_server(ctx.obj["settings"], server)
    if token_stdin:
        saved = sync.save_token(settings, sys.stdin.readline())
        click.echo(f"Clave guardada en {saved}", err=True)
    if watch:
        _watch(settings)
        return
    report = sync.sync_once(settings)
    sent = report.sent
    click.echo(f"Enviados: {sent['listens']} escuchas, {sent['navs']} pasos de menú, "
               f"{sent['messages']} mensajes.")
    if report.switched:
        click.echo(f"Contenido nuevo activo (versión {report.version[:8]}): {report.files} "
                   f"archivos, {report.bytes_in / 1e6:.1f} MB recibidos.")
    else:
        click.echo("El contenido ya estaba al día.")


def _watch(settings: Settings) -> None:
    sync.Client.from_settings(settings)  # no server or no token: say so now, not never
    background = sync.BackgroundSync(settings)
    last_error = None
    try:
        while True:
            status = background.tick()
            if status.error and status.error != last_error:
                click.echo(f"Error: {status.error}", err=True)
            last_error = status.error
            time.sleep(WATCH_TICK_S)
    except KeyboardInterrupt:
        pass

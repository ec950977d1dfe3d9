"""``pallay kiosks`` (edge tokens, on the server) and ``pallay pack`` (USB packs, both sides).

They reach the ``pallay`` command through the entry points ``pallay.commands`` in pyproject.toml,
beside the edge's ``pallay kiosk sync`` (``kiosk/sync_commands.py``).
"""

from __future__ import annotations

from pathlib import Path

import click

from audio_lessons import edges, packs, sync
from audio_lessons.config import Settings
from audio_lessons.media import VARIANTS


def _settings(ctx: click.Context) -> Settings:
    return ctx.obj["settings"]


def _db(ctx: click.Context, durable: bool = False):
    db = sync.connect(_settings(ctx).db_path)
    if durable:  # what the server imports must survive a power cut right after "imported"
        db.execute("PRAGMA synchronous = FULL")
    return db


@click.group()
def kiosks() -> None:
    """Kioscos y líneas remotas autorizados a sincronizar con este servidor.

    Ejemplo: pallay kiosks add sala-ocongate
    """


@kiosks.command("add")
@click.argument("name")
@click.option("--kind", type=click.Choice(edges.KINDS), default="kiosk", show_default=True,
              help="kiosk, o line para un segundo servidor de línea telefónica.")
@click.pass_context
def kiosks_add(ctx: click.Context, name: str, kind: str) -> None:
    """Registra un kiosco o línea y muestra su clave (solo esta vez; se guarda solo su huella).

    Ejemplo: pallay kiosks add sala-ocongate
    """
    edge, token = edges.add(_db(ctx), name, kind)
    click.echo(f"{edge.name} ({edge.kind}) registrado. Su clave (guárdela ahora, no se "
               "vuelve a mostrar):")
    click.echo(token)
    click.echo("En el equipo: echo CLAVE | pallay kiosk sync --token-stdin --server "
               "http://ESTE-SERVIDOR:PUERTO", err=True)


@kiosks.command("list")
@click.pass_context
def kiosks_list(ctx: click.Context) -> None:
    """Lista los kioscos y líneas registrados y cuándo se vio cada uno por última vez.

    Ejemplo: pallay kiosks list
    """
    found = edges.list_edges(_db(ctx))
    if not found:
        click.echo("No hay equipos registrados.")
    for edge in found:
        click.echo(f"{edge.name:24} {edge.kind:6} desde {edge.created_at}  "
                   f"visto {edge.last_seen or 'nunca'}")


@kiosks.command("revoke")
@click.argument("name")
@click.pass_context
def kiosks_revoke(ctx: click.Context, name: str) -> None:
    """Quita un kiosco o línea: su clave deja de servir al instante (sus eventos quedan).

    Ejemplo: pallay kiosks revoke sala-ocongate
    """
    edges.revoke(_db(ctx), name)
    click.echo(f"{name}: clave anulada.")


@click.group()
def pack() -> None:
    """Paquetes en USB para kioscos sin red: lecciones de ida, eventos de vuelta.

    Ejemplo: pallay pack export /media/usb/pallay-contenido.tar
    """


@pack.command("export")
@click.argument("file", metavar="ARCHIVO", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--variant", "variants", multiple=True, type=click.Choice(VARIANTS),
              help="Audio que incluye (si no: ambos; kiosk basta para kioscos).")
@click.pass_context
def pack_export(ctx: click.Context, file: Path, variants: tuple[str, ...]) -> None:
    """En el servidor: escribe en ARCHIVO las lecciones publicadas y su audio (una memoria USB).

    Ejemplo: pallay pack export /media/usb/pallay-contenido.tar --variant kiosk
    """
    settings = _settings(ctx)
    report = packs.export_content(_db(ctx), settings.media_dir, file, variants or VARIANTS)
    click.echo(f"Paquete escrito: {file} ({report.files} archivos, "
               f"{report.bytes / 1e6:.1f} MB, versión {report.version[:8]})")


@pack.command("import")
@click.argument("file", metavar="ARCHIVO", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def pack_import(ctx: click.Context, file: Path) -> None:
    """En un kiosco: carga el paquete de lecciones ARCHIVO (verificado, cambiado todo a la vez).

    Ejemplo: pallay pack import /media/usb/pallay-contenido.tar
    """
    settings = _settings(ctx)
    report = packs.import_content(_db(ctx), settings.data_dir, settings.media_dir, file,
                                  settings.sync.variants, settings.sync.edge or None)
    state = "contenido nuevo activo" if report.switched else "el contenido ya era este"
    click.echo(f"{state} (versión {report.version[:8]}; {report.files} archivos copiados)")


@pack.command("events")
@click.argument("file", metavar="ARCHIVO", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def pack_events(ctx: click.Context, file: Path) -> None:
    """En un kiosco: escribe en ARCHIVO los eventos y mensajes que faltan en el servidor, para el viaje de vuelta.

    Ejemplo: pallay pack events /media/usb/pallay-eventos-sala.tar
    """
    settings = _settings(ctx)
    counts = packs.export_events(_db(ctx), settings.messages_dir, file,
                                 settings.sync.edge or None)
    click.echo(f"Eventos escritos en {file}: {counts['listens']} escuchas, {counts['navs']} "
               f"pasos de menú, {counts['messages']} mensajes")


@pack.command("import-events")
@click.argument("file", metavar="ARCHIVO", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def pack_import_events(ctx: click.Context, file: Path) -> None:
    """En el servidor: carga el paquete de eventos ARCHIVO de un kiosco (se puede cargar dos veces).

    Ejemplo: pallay pack import-events /media/usb/pallay-eventos-sala.tar
    """
    settings = _settings(ctx)
    new = packs.import_events(_db(ctx, durable=True), settings.messages_dir, file)
    click.echo(f"Nuevos: {new['listens']} escuchas, {new['navs']} pasos de menú, "
               f"{new['messages']} mensajes (lo ya cargado no se duplica)")

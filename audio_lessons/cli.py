"""The ``pallay`` command: wiring only; the work is done in the core modules.

It speaks Spanish to the leaders and technicians who type it (cli_spanish.py); its logs, shown
with ``-v``, are English like the code.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import json
import logging
import sqlite3
import sys
from importlib.metadata import entry_points
from pathlib import Path

import click

from audio_lessons import catalog, config, labels, listeners, media, starter, stats, store
from audio_lessons.cli_spanish import SpanishGroup, os_reason
from audio_lessons.errors import PallayError
from audio_lessons.speech.commands import models, recognize
from audio_lessons.synth import Pyttsx3Synthesizer

log = logging.getLogger(__name__)


class PallayGroup(SpanishGroup):
    """The ``pallay`` group: a file the system refuses becomes a message, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except OSError as exc:
            if exc.errno == errno.EPIPE:
                raise  # output piped into `head`: click handles it
            log.debug("unexpected OSError", exc_info=exc)
            where = f" «{exc.filename}»" if exc.filename else ""
            raise click.ClickException(f"No se pudo leer o escribir{where}: {os_reason(exc)}.") \
                from exc


@click.group(cls=PallayGroup)
@click.option("--data", type=click.Path(file_okay=False, path_type=Path), envvar="PALLAY_DATA",
              help="Carpeta de datos (por defecto ./data, o $PALLAY_DATA).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Archivo de ajustes (por defecto DATA/pallay.toml).")
@click.option("-v", "--verbose", is_flag=True,
              help="Muestra el registro detallado (en inglés, para desarrolladores).")
@click.pass_context
def main(ctx: click.Context, data: Path | None, config_file: Path | None, verbose: bool) -> None:
    """pallay: lecciones de seguridad habladas, por teléfono y en un quiosco sin internet.

    Ejemplo: pallay --data /srv/pallay init
    """
    # One-shot commands print their own Spanish messages; their English log lines would only
    # repeat them, so they show with -v. Services log what they do.
    quiet = ctx.invoked_subcommand not in ("serve", "ivr")
    logging.basicConfig(level=logging.DEBUG if verbose else logging.ERROR if quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    settings = config.load(data, config_file)
    ctx.obj = {"settings": settings}


def _settings(ctx: click.Context) -> config.Settings:
    return ctx.obj["settings"]


def _db(ctx: click.Context):
    """The store in the data folder (created if needed); a clear message if the folder is unusable."""
    settings = _settings(ctx)
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return store.connect(settings.db_path)
    except (OSError, sqlite3.Error) as exc:
        log.debug("cannot open the store in %s", settings.data_dir, exc_info=exc)
        raise click.ClickException(
            f"No se puede usar la carpeta de datos «{settings.data_dir}»: {_reason(exc)}. "
            "Elija otra con --data CARPETA o PALLAY_DATA.") from exc


def _reason(exc: OSError | sqlite3.Error) -> str:
    if isinstance(exc, OSError):
        return os_reason(exc)
    return "la base de datos no se puede crear ni abrir ahí"


def _echo_json(value) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2, default=str))


@main.command()
@click.pass_context
def init(ctx: click.Context) -> None:
    """Crea la carpeta de datos, la base de datos y las lecciones iniciales (se puede repetir).

    Las lecciones iniciales y todos los avisos del menú se dicen con voz sintética (espeak-ng) y
    quedan marcados para reemplazarlos por la grabación de una lideresa.

    Ejemplo: pallay init
    """
    settings = _settings(ctx)
    db = _db(ctx)
    listeners.load_or_create_secret(settings.secret_path)
    synthesizer = Pyttsx3Synthesizer(settings.voice, settings.cache_dir)
    with click.progressbar(length=1, label="Lecciones iniciales", file=sys.stderr) as bar:
        def progress(done: int, total: int, label: str) -> None:
            bar.length = total
            bar.update(done - bar.pos)
        summary = starter.install(db, settings, synthesizer, progress=progress)
    click.echo(f"Carpeta de datos lista: {settings.data_dir.resolve()}")
    click.echo(f"Lecciones iniciales: {summary.lessons_added} lecciones y {summary.prompts_added} "
               f"avisos añadidos, {summary.lessons_kept} lecciones conservadas "
               f"({summary.seconds:.1f} s).")


@main.group()
def lessons() -> None:
    """Ver y añadir lecciones.

    Ejemplo: pallay lessons list
    """


@lessons.command("list")
@click.option("--json", "as_json", is_flag=True, help="Una lista JSON, para programas.")
@click.pass_context
def lessons_list(ctx: click.Context, as_json: bool) -> None:
    """Muestra las lecciones con su tecla, sus palabras clave y sus grabaciones.

    Ejemplo: pallay lessons list --json
    """
    found = catalog.list_lessons(_db(ctx))
    if as_json:
        _echo_json([dataclasses.asdict(le) for le in found])
        return
    for le in found:
        recs = ", ".join(f"{lang}{'*' if r.synthetic else ''} {r.duration_ms / 1000:.0f}s"
                         for lang, r in sorted(le.recordings.items()))
        state = "" if le.published else " (no publicada)"
        click.echo(f"{le.id:>3}  tecla {le.key or '-'}  {le.title}{state}  "
                   f"[{recs or 'sin grabación'}]  palabras: {', '.join(le.keywords) or '-'}")
    if any(r.synthetic for le in found for r in le.recordings.values()):
        click.echo("* voz sintética provisional: reemplácela con la grabación de una lideresa")


@lessons.command("add")
@click.argument("audio", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--title", help="Título como se oye en el menú, p. ej. «el polvo» (lección nueva).")
@click.option("--language", default="es", show_default=True, help="Idioma de la grabación.")
@click.option("--key", help="Tecla del menú, 1-9 (8 y 9 están reservadas en el menú principal).")
@click.option("--keywords", default="", help="Palabras, separadas por comas, que la eligen por voz.")
@click.option("--speaker", default="", help="Quién la grabó (se le da el crédito).")
@click.option("--topic", default="", help="Tema de la guía de seguridad.")
@click.option("--menu", "menu_slug", default=catalog.ROOT_MENU, show_default=True,
              help="Menú donde va la lección nueva.")
@click.option("--lesson", "existing",
              help="Añade la grabación a una lección que ya existe (número o identificador).")
@click.pass_context
def lessons_add(ctx: click.Context, audio: Path, title: str, language: str, key: str | None,
                keywords: str, speaker: str, topic: str, menu_slug: str,
                existing: str | None) -> None:
    """Importa una grabación (en cualquier formato de teléfono) como lección.

    Ejemplo: pallay lessons add polvo.ogg --title "el polvo" --key 4 --keywords polvo,mascarilla
    """
    if not (title or existing):
        raise click.UsageError("indique --title para una lección nueva, o --lesson para una que "
                               "ya existe")
    settings = _settings(ctx)
    db = _db(ctx)
    # Everything a leader can get wrong is refused before any audio is written.
    catalog.check_language(db, language)
    speaker = labels.check_speaker(speaker)
    if existing:
        lesson_id, created = catalog.get_lesson(db, existing).id, False
    else:
        lesson_id, created = catalog.add_lesson(
            db, slug=catalog.slugify(title), title=title, topic=topic, menu=menu_slug, key=key,
            keywords=keywords), True
    try:
        prepared = _import_recording(db, settings, audio, lesson_id, language, speaker)
    except PallayError:
        if created:
            catalog.delete_lesson(db, lesson_id)
        raise
    click.echo(f"Lección {lesson_id} ({language}): {prepared.duration_ms / 1000:.1f} s de audio")


def _import_recording(db, settings: config.Settings, audio: Path, lesson_id: int, language: str,
                      speaker: str) -> media.Prepared:
    """Prepare the audio and make it the lesson's recording; a refusal leaves no media behind."""
    with click.progressbar(length=2, label="Preparando el audio", file=sys.stderr) as bar:
        prepared = media.prepare(audio, settings.media_dir, settings.media, audio.name)
        bar.update(1)
        try:
            media.register(db, prepared, audio.name)
            catalog.set_recording(db, lesson_id, language, prepared.hash, speaker=speaker)
        except PallayError:
            media.discard_unused(db, settings.media_dir, prepared.hash)
            raise
        bar.update(1)
    return prepared


@main.command("stats")
@click.option("--json", "as_json", is_flag=True, help="Un objeto JSON, para programas.")
@click.option("--since", metavar="FECHA", help="Primer día: 30/11/2026, 2026-11-30, hoy, ayer...")
@click.option("--until", metavar="FECHA", help="Último día, escrito igual.")
@click.option("--channel", type=click.Choice(["phone", "kiosk"]),
              help="Solo el teléfono (phone) o solo los quioscos (kiosk).")
@click.pass_context
def stats_command(ctx: click.Context, as_json: bool, since: str | None, until: str | None,
                  channel: str | None) -> None:
    """Estadísticas de escucha: oyentes, lecciones terminadas y el recorrido del menú.

    Ejemplo: pallay stats --since 01/11/2026 --channel phone
    """
    db = _db(ctx)
    result = stats.summary(db, since=since, until=until, channel=channel)
    if as_json:
        _echo_json(dataclasses.asdict(result))
    else:
        click.echo(stats.render(result))


@main.group("db")
def db_group() -> None:
    """Mantenimiento de la base de datos.

    Ejemplo: pallay db backup /media/usb/pallay-copia.db
    """


@db_group.command("backup")
@click.argument("path", metavar="ARCHIVO", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def db_backup(ctx: click.Context, path: Path) -> None:
    """Guarda una copia completa de la base de datos (se puede hacer con pallay funcionando).

    Ejemplo: pallay db backup /media/usb/pallay-2026-11-24.db
    """
    db = _db(ctx)
    try:
        target = store.backup(db, path)
    except FileExistsError as exc:
        raise click.ClickException(f"Ya existe {path}: elija otro nombre de archivo.") from exc
    except (OSError, sqlite3.Error) as exc:
        raise click.ClickException(f"No se pudo escribir la copia en {path}: "
                                   f"{_reason(exc)}.") from exc
    click.echo(f"Copia guardada: {target} ({target.stat().st_size} bytes)")


@main.command()
@click.option("--host", help="Dirección del panel (si no: [admin] host, 0.0.0.0).")
@click.option("--port", type=int, help="Puerto del panel (si no: [admin] port, 8080).")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Atiende con todos los servicios instalados (línea telefónica, panel) hasta que se detenga.

    Ejemplo: pallay --data /srv/pallay serve --port 8080
    """
    services = {ep.name: ep.load() for ep in entry_points(group="pallay.services")}
    if not services:
        raise click.ClickException("No hay ningún servicio de pallay instalado.")
    settings = _settings(ctx)
    admin = dataclasses.replace(settings.admin, host=host or settings.admin.host,
                                port=port or settings.admin.port)
    settings = dataclasses.replace(settings, admin=admin)
    click.echo(f"En servicio: {', '.join(sorted(services))} (Ctrl-C para detener)", err=True)
    if "admin-panel" in services:
        click.echo(f"Panel de administración: http://{admin.host}:{admin.port}  (primera "
                   f"cuenta: pallay users add NOMBRE --role admin)", err=True)

    async def run_all() -> None:
        await asyncio.gather(*(run(settings) for run in services.values()))

    try:
        asyncio.run(run_all())
    except KeyboardInterrupt:
        pass
    except PallayError as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:
        raise click.ClickException(f"No se pudo iniciar el servicio: {os_reason(exc)}.") from exc


main.add_command(models)
main.add_command(recognize)
# Front ends add their own commands (``pallay ivr``, ``pallay call``...) through entry points, so
# the core never imports them.
for _entry in entry_points(group="pallay.commands"):
    main.add_command(_entry.load(), _entry.name)

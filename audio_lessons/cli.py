"""The ``pallay`` command: wiring only; the work is done in the core modules."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import sys
from importlib.metadata import entry_points
from pathlib import Path

import click

from audio_lessons import catalog, config, listeners, media, starter, stats, store
from audio_lessons.errors import PallayError
from audio_lessons.speech.commands import models, recognize
from audio_lessons.synth import Pyttsx3Synthesizer

log = logging.getLogger(__name__)


@click.group()
@click.option("--data", type=click.Path(file_okay=False, path_type=Path), envvar="PALLAY_DATA",
              help="Data folder (default ./data, or $PALLAY_DATA).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Settings file (default DATA/pallay.toml).")
@click.option("-v", "--verbose", is_flag=True, help="Log debug details.")
@click.pass_context
def main(ctx: click.Context, data: Path | None, config_file: Path | None, verbose: bool) -> None:
    """pallay: spoken safety lessons on a phone line and an offline kiosk.

    Example: pallay --data /srv/pallay init
    """
    quiet = ctx.invoked_subcommand not in ("serve", "ivr")  # services log what they do
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        settings = config.load(data, config_file)
    except PallayError as exc:
        raise click.ClickException(str(exc)) from exc
    ctx.obj = {"settings": settings}


def _settings(ctx: click.Context) -> config.Settings:
    return ctx.obj["settings"]


def _db(ctx: click.Context):
    return store.connect(_settings(ctx).db_path)


def _echo_json(value) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2, default=str))


@main.command()
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create the data folder, the database and the starter lessons (safe to run again).

    The starter lessons and every menu prompt are synthesised with espeak-ng and marked as
    placeholders to be replaced by a leader's recording.

    Example: pallay init
    """
    settings = _settings(ctx)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = store.connect(settings.db_path)
    listeners.load_or_create_secret(settings.secret_path)
    synthesizer = Pyttsx3Synthesizer(settings.voice, settings.cache_dir)
    with click.progressbar(length=1, label="Starter lessons", file=sys.stderr) as bar:
        def progress(done: int, total: int, label: str) -> None:
            bar.length = total
            bar.update(done - bar.pos)
        try:
            summary = starter.install(db, settings, synthesizer, progress=progress)
        except PallayError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"Data folder ready: {settings.data_dir.resolve()}")
    click.echo(f"Starter pack: {summary.lessons_added} lessons and {summary.prompts_added} prompts "
               f"added, {summary.lessons_kept} lessons kept ({summary.seconds:.1f} s).")


@main.group()
def lessons() -> None:
    """List and add lessons.

    Example: pallay lessons list
    """


@lessons.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON array, for scripts.")
@click.pass_context
def lessons_list(ctx: click.Context, as_json: bool) -> None:
    """List lessons with their key, keywords and recordings.

    Example: pallay lessons list --json
    """
    found = catalog.list_lessons(_db(ctx))
    if as_json:
        _echo_json([dataclasses.asdict(le) for le in found])
        return
    for le in found:
        recs = ", ".join(f"{lang}{'*' if r.synthetic else ''} {r.duration_ms / 1000:.0f}s"
                         for lang, r in sorted(le.recordings.items()))
        state = "" if le.published else " (unpublished)"
        click.echo(f"{le.id:>3}  key {le.key or '-'}  {le.title}{state}  [{recs or 'no recording'}]"
                   f"  words: {', '.join(le.keywords) or '-'}")
    if any(r.synthetic for le in found for r in le.recordings.values()):
        click.echo("* synthetic placeholder: replace it with a leader's recording")


@lessons.command("add")
@click.argument("audio", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--title", help="Title as heard in the menu, e.g. 'el polvo' (for a new lesson).")
@click.option("--language", default="es", show_default=True, help="Language of the recording.")
@click.option("--key", help="Menu key 1-9 (8 and 9 are reserved in the main menu).")
@click.option("--keywords", default="", help="Comma-separated words that pick it by voice.")
@click.option("--speaker", default="", help="Who recorded it (credited in the admin panel).")
@click.option("--topic", default="", help="Topic of the safety guide.")
@click.option("--menu", "menu_slug", default=catalog.ROOT_MENU, show_default=True)
@click.option("--lesson", "existing", help="Add this recording to an existing lesson (id or slug).")
@click.pass_context
def lessons_add(ctx: click.Context, audio: Path, title: str, language: str, key: str | None,
                keywords: str, speaker: str, topic: str, menu_slug: str,
                existing: str | None) -> None:
    """Import a recording (any format a phone makes) as a lesson.

    Example: pallay lessons add polvo.ogg --title "el polvo" --key 4 --keywords polvo,mascarilla
    """
    if not (title or existing):
        raise click.UsageError("give --title for a new lesson, or --lesson for an existing one")
    settings = _settings(ctx)
    db = store.connect(settings.db_path)
    words = tuple(w.strip() for w in keywords.split(",") if w.strip())
    try:
        # The lesson first: a taken key or word is refused before any audio is written.
        if existing:
            lesson_id, created = catalog.get_lesson(db, existing).id, False
        else:
            lesson_id, created = catalog.add_lesson(
                db, slug=catalog.slugify(title), title=title, topic=topic, menu=menu_slug, key=key,
                keywords=words), True
        try:
            with click.progressbar(length=2, label="Preparing audio", file=sys.stderr) as bar:
                prepared = media.prepare(audio, settings.media_dir, settings.media, audio.name)
                bar.update(1)
                media.register(db, prepared, audio.name)
                catalog.set_recording(db, lesson_id, language, prepared.hash, speaker=speaker)
                bar.update(1)
        except PallayError:
            if created:
                catalog.delete_lesson(db, lesson_id)
            raise
    except PallayError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Lesson {lesson_id} ({language}): {prepared.duration_ms / 1000:.1f} s of audio")


@main.command("stats")
@click.option("--json", "as_json", is_flag=True, help="One JSON object, for scripts.")
@click.option("--since", help="First day, YYYY-MM-DD.")
@click.option("--until", help="Last day, YYYY-MM-DD.")
@click.option("--channel", type=click.Choice(["phone", "kiosk"]))
@click.pass_context
def stats_command(ctx: click.Context, as_json: bool, since: str | None, until: str | None,
                  channel: str | None) -> None:
    """Listening statistics: listeners, completions and the menu funnel.

    Example: pallay stats --since 2026-11-01 --channel phone
    """
    try:
        result = stats.summary(_db(ctx), since=since, until=until, channel=channel)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        _echo_json(dataclasses.asdict(result))
    else:
        click.echo(stats.render(result))


@main.group("db")
def db_group() -> None:
    """Database maintenance.

    Example: pallay db backup /media/usb/pallay-backup.db
    """


@db_group.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def db_backup(ctx: click.Context, path: Path) -> None:
    """Write a consistent copy of the live database (safe while pallay runs).

    Example: pallay db backup /media/usb/pallay-2026-11-24.db
    """
    try:
        target = store.backup(_db(ctx), path)
    except FileExistsError as exc:
        raise click.ClickException(f"{path} already exists; choose a new file name") from exc
    click.echo(f"Backup written: {target} ({target.stat().st_size} bytes)")


@main.command()
@click.option("--host", help="Address of the admin panel (default: [admin] host, 0.0.0.0).")
@click.option("--port", type=int, help="Port of the admin panel (default: [admin] port, 8080).")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Run every pallay service installed here (phone line, admin panel) until stopped.

    Example: pallay --data /srv/pallay serve --port 8080
    """
    services = {ep.name: ep.load() for ep in entry_points(group="pallay.services")}
    if not services:
        raise click.ClickException("no pallay service is installed")
    settings = _settings(ctx)
    admin = dataclasses.replace(settings.admin, host=host or settings.admin.host,
                                port=port or settings.admin.port)
    settings = dataclasses.replace(settings, admin=admin)
    click.echo(f"Serving: {', '.join(sorted(services))} (Ctrl-C to stop)", err=True)
    if "admin-panel" in services:
        click.echo(f"Admin panel: http://{admin.host}:{admin.port}  (first user: "
                   f"pallay users add NAME --role admin)", err=True)

    async def run_all() -> None:
        await asyncio.gather(*(run(settings) for run in services.values()))

    try:
        asyncio.run(run_all())
    except KeyboardInterrupt:
        pass
    except (PallayError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc


main.add_command(models)
main.add_command(recognize)
# Front ends add their own commands (``pallay ivr``, ``pallay call``...) through entry points, so
# the core never imports them.
for _entry in entry_points(group="pallay.commands"):
    main.add_command(_entry.load(), _entry.name)

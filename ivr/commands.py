"""The phone line's ``pallay`` commands (``ivr``, ``call``, ``callbacks``) and its service for
``pallay serve``. Like every ``pallay`` command they speak Spanish (see audio_lessons/cli.py).

The core never imports ``ivr``: these reach the ``pallay`` command through the entry points
``pallay.commands`` and ``pallay.services`` in pyproject.toml.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

import click

from audio_lessons import listeners, speech
from audio_lessons import live as live_snapshot
from audio_lessons.cli_spanish import os_reason
from audio_lessons.config import Settings
from audio_lessons.errors import ConfigError, PallayError
from audio_lessons.speech.pool import RecognizerPool
from ivr import alerts, outbound, server
from ivr.ami import AmiClient
from ivr.callbacks import MissedCalls
from ivr.line import LessonLine
from ivr.live import LiveCalls

log = logging.getLogger(__name__)


def ami_secret(settings: Settings) -> str:
    """The AMI secret from its file (``ivr.ami_secret_file``, relative to the data folder)."""
    path = Path(settings.ivr.ami_secret_file)
    path = path if path.is_absolute() else settings.data_dir / path
    try:
        secret = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"No se puede leer el secreto de AMI en {path} ({os_reason(exc)}): "
                          "escriba ahí el secreto del usuario pallay de manager.d/pallay.conf "
                          "(permisos 0600).") from exc
    if not secret:
        raise ConfigError(f"El archivo del secreto de AMI {path} está vacío.")
    return secret


def ami_client(settings: Settings) -> AmiClient:
    s = settings.ivr
    return AmiClient(s.ami_host, s.ami_port, s.ami_user, ami_secret(settings))


@dataclass
class Outbound:
    """The running outgoing side: AMI connection, live view, dialer, missed-call intake."""

    ami: AmiClient
    live: LiveCalls
    dialer: outbound.Dialer
    missed: MissedCalls
    tasks: tuple[asyncio.Task, ...]

    async def close(self) -> None:
        """Stop the dialer first (it records the tries it cuts short), then AMI."""
        for task in reversed(self.tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def serve_outbound(settings: Settings, secret: bytes, ami: AmiClient | None = None,
                         clock: outbound.Clock = outbound.utc_now) -> Outbound:
    """Start AMI, the live view, the dialer and the missed-call intake as tasks."""
    ami = ami or ami_client(settings)
    live = LiveCalls(snapshot=settings.data_dir / live_snapshot.SNAPSHOT)
    live.attach(ami)
    dialer = outbound.Dialer(settings.db_path, settings.ivr, ami, clock=clock)
    missed = MissedCalls(settings.ivr, secret, dialer)
    missed.attach(ami)
    ami.on_connect(_wake_on_connect(dialer))
    tasks = (asyncio.create_task(ami.run(), name="ami"),
             asyncio.create_task(dialer.run(), name="dialer"),
             asyncio.create_task(_heartbeat(live), name="live-heartbeat"))
    return Outbound(ami, live, dialer, missed, tasks)


async def _heartbeat(live: LiveCalls) -> None:
    """Rewrite the live snapshot now and then, so the panel can tell a quiet line from a dead one."""
    while True:
        live.publish()
        await asyncio.sleep(live_snapshot.HEARTBEAT_SECONDS)


def _wake_on_connect(dialer: outbound.Dialer):
    async def hook() -> None:
        dialer.wake()  # calls that waited for AMI go now
    return hook


def _settings(ctx: click.Context) -> Settings:
    return ctx.obj["settings"]


# What the outgoing-call rows say (ivr/outbound.py), for the person reading them.
KINDS = {"callback": "devolución", "alert": "aviso", "manual": "a mano"}
STATUSES = {"queued": "en cola", "calling": "llamando", "answered": "contestó",
            "given_up": "abandonada", "capped": "tope diario", "cancelled": "cancelada"}
RESULTS = {"answered": "contestó", "no-answer": "no contestó", "busy": "ocupado",
           "congestion": "red saturada", "failed": "falló", "expired": "vencida"}


@click.command()
@click.argument("number", metavar="NÚMERO")
@click.option("--lesson", type=int,
              help="Número de la lección que oye primero (por defecto: el menú principal).")
@click.pass_context
def call(ctx: click.Context, number: str, lesson: int | None) -> None:
    """Llama ahora a NÚMERO y la pone en la línea de lecciones (un aviso hecho a mano).

    Necesita Asterisk funcionando con el usuario AMI de pallay. No espera el horario ni la cola;
    la llamada se registra como las demás y el número se borra al terminar.

    Ejemplo: pallay call 987654321 --lesson 3
    """
    settings = _settings(ctx)
    secret = listeners.load_or_create_secret(settings.secret_path)
    db = outbound.connect(settings.db_path)
    try:
        if lesson is not None and not db.execute("SELECT 1 FROM lessons WHERE id = ?",
                                                 [lesson]).fetchone():
            raise click.ClickException(f"No existe la lección {lesson} (vea: pallay lessons list).")
        result = asyncio.run(_call_once(settings, secret, db, number, lesson))
    finally:
        db.close()
    click.echo(f"Llamada a {mask(number)}: {RESULTS.get(result.outcome, result.outcome)}")
    if not result.answered:
        ctx.exit(1)


async def _call_once(settings: Settings, secret: bytes, db, number: str, lesson: int | None):
    ami = ami_client(settings)
    running = asyncio.create_task(ami.run())
    try:
        try:
            await ami.wait_connected(ami.timeout)
        except TimeoutError as exc:
            raise click.ClickException(
                f"No se puede conectar con el AMI de Asterisk en {ami.host}:{ami.port} como "
                f"{ami.user}: ¿está funcionando Asterisk?") from exc
        return await alerts.call_now(db, settings.ivr, secret, ami, number, lesson)
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running


def mask(number: str | None) -> str:
    """``+51987654321`` -> ``+5198*****21``: enough for her to recognise, not to copy."""
    if not number:
        return "-"
    return number[:-7] + "*****" + number[-2:] if len(number) > 7 else "*" * len(number)


@click.command()
@click.option("--all", "show_all", is_flag=True, help="También las terminadas (las últimas 50).")
@click.pass_context
def callbacks(ctx: click.Context, show_all: bool) -> None:
    """Muestra las llamadas salientes pendientes (devoluciones y avisos): estado e intentos.

    Los números se muestran tapados; las llamadas terminadas ya no tienen número.

    Ejemplo: pallay callbacks --all
    """
    settings = _settings(ctx)
    db = outbound.connect(settings.db_path)
    try:
        where = "1" if show_all else "status IN ('queued', 'calling')"
        found = db.execute(
            f"SELECT id, kind, status, tries, max_tries, next_try_at, last_result, number, "
            f"listener, lesson_id FROM ivr_outbound WHERE {where} ORDER BY id DESC LIMIT 50"
        ).fetchall()
    finally:
        db.close()
    if not found:
        click.echo("No hay llamadas pendientes." if not show_all else "Todavía no hay llamadas.")
        return
    click.echo(f"{'id':>5} {'tipo':10} {'estado':11} {'intentos':8} {'próximo (UTC)':21} "
               f"{'resultado':12} {'número':14} oyente    lección")
    for row_id, kind, status, tries, max_tries, next_try, result, number, who, lesson in found:
        click.echo(f"{row_id:>5} {KINDS.get(kind, kind):10} {STATUSES.get(status, status):11} "
                   f"{f'{tries}/{max_tries}':8} {next_try:21} {RESULTS.get(result, result or '-'):12} "
                   f"{mask(number):14} {who[:8]}  {lesson or '-'}")


async def run_line(settings: Settings, listen: str | None = None) -> None:
    """The whole phone line until cancelled: FastAGI lesson line, plus callbacks and alerts."""
    secret = listeners.load_or_create_secret(settings.secret_path)
    recognizers = None
    if speech.from_settings(settings) is not None:  # loads once: a bad model fails here, loudly
        recognizers = RecognizerPool(lambda: speech.from_settings(settings))
    try:
        outgoing = await serve_outbound(settings, secret)
    except ConfigError as exc:
        log.warning("callbacks and alerts are off: %s", exc)
        outgoing = None
    line = LessonLine(settings, secret, recognizers, device=settings.ivr.device,
                      live=outgoing.live if outgoing else None)
    host, _, port = (listen or settings.ivr.listen).rpartition(":")
    await line.start()  # the AudioSocket server for spoken answers (when voice is on)
    agi = await server.start(host or "127.0.0.1", int(port), {"lessons": line})
    try:
        await asyncio.Event().wait()  # until cancelled (Ctrl-C, systemd stop)
    finally:
        await agi.close()
        await line.close()
        if outgoing:
            await outgoing.close()


@click.command("ivr")
@click.option("--listen", metavar="HOST:PUERTO",
              help="Dónde escucha el servidor FastAGI (por defecto: [ivr] listen).")
@click.pass_context
def ivr_command(ctx: click.Context, listen: str | None) -> None:
    """Atiende la línea telefónica: lecciones, devoluciones de llamadas perdidas y avisos.

    El dialplan llega con AGI(agi://127.0.0.1:4573/lessons) (vea deploy/asterisk/).

    Ejemplo: pallay ivr --listen 127.0.0.1:4573
    """
    try:
        asyncio.run(run_line(_settings(ctx), listen))
    except KeyboardInterrupt:
        pass
    except PallayError as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:
        raise click.ClickException(f"No se pudo abrir la línea: {os_reason(exc)}.") from exc
    except ValueError as exc:  # a --listen or [ivr] listen that is not HOST:PORT
        raise click.ClickException(f"La dirección «{listen or _settings(ctx).ivr.listen}» no es "
                                   "válida: escríbala como 127.0.0.1:4573.") from exc

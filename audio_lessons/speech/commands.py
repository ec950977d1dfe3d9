"""``pallay models`` and ``pallay recognize``: speech tools for developers and admins."""

from __future__ import annotations

import json
from pathlib import Path

import click

from audio_lessons import config
from audio_lessons.errors import PallayError
from audio_lessons.speech import ENGINES, grammar_words, open_recognizer
from audio_lessons.speech import models as model_store
from audio_lessons.speech.audio import read_wav


def _settings(ctx: click.Context) -> config.Settings:
    obj = ctx.find_root().obj
    if isinstance(obj, dict) and isinstance(obj.get("settings"), config.Settings):
        return obj["settings"]
    try:
        return config.load()
    except PallayError as exc:
        raise click.ClickException(str(exc)) from exc


def _models_dir(settings: config.Settings) -> Path:
    return settings.data_dir / "models"


@click.group()
def models() -> None:
    """List and install speech models (DATA/models).

    Example: pallay models install /media/usb/vosk-model-small-es-0.42.zip
    """


@models.command("list")
@click.pass_context
def list_command(ctx: click.Context) -> None:
    """Show installed models: engine, language, size, path.

    Example: pallay models list
    """
    found = model_store.list_models(_models_dir(_settings(ctx)))
    if not found:
        click.echo("No speech models installed: voice is off, keys only. "
                   "Install one with: pallay models install SOURCE")
        return
    click.echo(f"{'name':32} {'engine':13} {'lang':5} {'size':>9}  path")
    for m in found:
        click.echo(f"{m.name:32} {m.engine:13} {m.language:5} "
                   f"{m.size_bytes / 1e6:7.1f}MB  {m.path}")


@models.command("install")
@click.argument("source")
@click.option("--sha256", help="Expected sha256 of the zip file (checked before unpacking).")
@click.pass_context
def install_command(ctx: click.Context, source: str, sha256: str | None) -> None:
    """Install a model from a folder, a .zip (e.g. on a USB stick), a URL or a Vosk model name.

    A bare name such as vosk-model-small-es-0.42 downloads the official Vosk zip.

    Example: pallay models install vosk-model-small-es-0.42
    """
    target = _models_dir(_settings(ctx))
    bar = None

    def progress(n: int, total: int | None) -> None:
        nonlocal bar
        if bar is None:
            bar = click.progressbar(length=total or 0, label="Downloading", show_pos=total is None)
            bar.__enter__()
        bar.update(n)

    try:
        info = model_store.install(source, target, sha256=sha256, progress=progress)
    except PallayError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    click.echo(f"Installed {info.engine} model ({info.language}, {info.size_bytes / 1e6:.1f} MB) "
               f"at {info.path}")
    click.echo(f'Use it: set [speech] engine = "{info.engine}" and model = "{info.path}"')


@click.command()
@click.argument("audio", type=click.Path(exists=True, dir_okay=False))
@click.option("--engine", type=click.Choice(ENGINES), help="Default: settings [speech] engine.")
@click.option("--model", "model_path", type=click.Path(), help="Model folder (default: settings).")
@click.option("--words", help="Comma-separated grammar (default: the command words).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def recognize(ctx: click.Context, audio: str, engine: str | None, model_path: str | None,
              words: str | None, as_json: bool) -> None:
    """Recognise one spoken word in a 16-bit mono WAV file (8 or 16 kHz).

    Prints the word heard, the command it maps to and the confidence, or that it was rejected.

    Example: pallay recognize digit4.wav --engine pocketsphinx --model models/es --words uno,dos
    """
    speech = _settings(ctx).speech
    engine = engine or (speech.engine if speech.engine in ENGINES else None)
    model_path = model_path or speech.model
    if not engine or not model_path:
        raise click.ClickException("No speech engine/model: pass --engine and --model or set "
                                   "[speech] engine and model in pallay.toml.")
    grammar = [w for w in (words or "").split(",") if w.strip()] or list(grammar_words())
    try:
        recognizer = open_recognizer(engine, model_path, speech.dictionary or None,
                                     speech.accept_threshold)
        missing = recognizer.missing_words(grammar)
        samples, rate = read_wav(audio)
        heard = recognizer.recognise(samples, rate, grammar)
    except PallayError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps({
            "text": heard.text, "confidence": round(heard.confidence, 4),
            "accepted": heard.accepted, "command": heard.command, "reason": heard.reason,
            "alternatives": [[w, round(c, 4)] for w, c in heard.alternatives],
            "engine": engine, "missing_words": list(missing)}, ensure_ascii=False))
        return
    if missing:
        click.echo(f"Warning: the model cannot hear: {', '.join(missing)}", err=True)
    if heard.accepted:
        click.echo(f"heard: {heard.text}  command: {heard.command}  "
                   f"confidence: {heard.confidence:.2f}")
    else:
        guess = f" (best guess {heard.text!r})" if heard.text else ""
        click.echo(f"rejected: {heard.reason}{guess}  confidence: {heard.confidence:.2f}")

"""``pallay models`` and ``pallay recognize``: speech tools for technicians (Spanish, as the CLI)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from audio_lessons import config
from audio_lessons.errors import PallayError
from audio_lessons.speech import ENGINES, grammar_words, open_recognizer
from audio_lessons.speech import models as model_store
from audio_lessons.speech.audio import read_wav

# Why a word was rejected (speech.recognizer), as the CLI says it.
REJECTIONS = {
    "silence": "silencio", "clipped": "audio saturado", "out-of-grammar": "no es una de las palabras",
    "low-confidence": "poca confianza", "several-words": "varias palabras",
}


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
    """Ver e instalar modelos de voz (en DATA/models).

    Ejemplo: pallay models install /media/usb/vosk-model-small-es-0.42.zip
    """


@models.command("list")
@click.pass_context
def list_command(ctx: click.Context) -> None:
    """Muestra los modelos instalados: motor, idioma, tamaño y carpeta.

    Ejemplo: pallay models list
    """
    found = model_store.list_models(_models_dir(_settings(ctx)))
    if not found:
        click.echo("No hay modelos de voz instalados: la voz está apagada, solo funcionan las "
                   "teclas. Instale uno con: pallay models install ORIGEN")
        return
    click.echo(f"{'nombre':32} {'motor':13} {'idioma':6} {'tamaño':>9}  carpeta")
    for m in found:
        click.echo(f"{m.name:32} {m.engine:13} {m.language:6} "
                   f"{m.size_bytes / 1e6:7.1f}MB  {m.path}")


@models.command("install")
@click.argument("source", metavar="ORIGEN")
@click.option("--sha256", metavar="SUMA",
              help="sha256 que debe tener el .zip (se comprueba antes de abrirlo).")
@click.pass_context
def install_command(ctx: click.Context, source: str, sha256: str | None) -> None:
    """Instala un modelo desde una carpeta, un .zip (p. ej. en una USB), una URL o un nombre Vosk.

    Un nombre como vosk-model-small-es-0.42 descarga el .zip oficial de Vosk.

    Ejemplo: pallay models install vosk-model-small-es-0.42
    """
    target = _models_dir(_settings(ctx))
    bar = None

    def progress(n: int, total: int | None) -> None:
        nonlocal bar
        if bar is None:
            bar = click.progressbar(length=total or 0, label="Descargando", show_pos=total is None)
            bar.__enter__()
        bar.update(n)

    try:
        info = model_store.install(source, target, sha256=sha256, progress=progress)
    except PallayError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    click.echo(f"Modelo {info.engine} instalado ({info.language}, {info.size_bytes / 1e6:.1f} MB) "
               f"en {info.path}")
    click.echo(f'Para usarlo, ponga en pallay.toml, sección [speech]: engine = "{info.engine}" y '
               f'model = "{info.path}"')


@click.command()
@click.argument("audio", type=click.Path(exists=True, dir_okay=False))
@click.option("--engine", type=click.Choice(ENGINES),
              help="Motor de voz (por defecto: [speech] engine de los ajustes).")
@click.option("--model", "model_path", metavar="CARPETA", type=click.Path(),
              help="Carpeta del modelo (por defecto: la de los ajustes).")
@click.option("--words", metavar="PALABRAS",
              help="Palabras posibles, separadas por comas (por defecto: las de los comandos).")
@click.option("--json", "as_json", is_flag=True, help="Un objeto JSON, para programas.")
@click.pass_context
def recognize(ctx: click.Context, audio: str, engine: str | None, model_path: str | None,
              words: str | None, as_json: bool) -> None:
    """Reconoce una palabra dicha en un archivo WAV mono de 16 bits (8 o 16 kHz).

    Muestra la palabra oída, el comando que le corresponde y la confianza, o que fue rechazada.

    Ejemplo: pallay recognize digito4.wav --engine pocketsphinx --model models/es --words uno,dos
    """
    speech = _settings(ctx).speech
    engine = engine or (speech.engine if speech.engine in ENGINES else None)
    model_path = model_path or speech.model
    if not engine or not model_path:
        raise click.ClickException("Falta el motor o el modelo de voz: use --engine y --model, o "
                                   "ponga [speech] engine y model en pallay.toml.")
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
        click.echo(f"Atención: el modelo no puede oír: {', '.join(missing)}", err=True)
    if heard.accepted:
        click.echo(f"oído: {heard.text}  comando: {heard.command}  "
                   f"confianza: {heard.confidence:.2f}")
    else:
        guess = f" (lo más parecido: «{heard.text}»)" if heard.text else ""
        reason = REJECTIONS.get(heard.reason, heard.reason)
        click.echo(f"rechazada: {reason}{guess}  confianza: {heard.confidence:.2f}")

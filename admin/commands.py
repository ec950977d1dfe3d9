"""The panel's ``pallay`` commands (``users``, ``menus``, ``panel``) and its ``pallay serve`` service.

They reach ``pallay`` through the entry points ``pallay.commands`` and ``pallay.services`` in
pyproject.toml; the core never imports this package.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sys
import threading

import click

from audio_lessons import catalog, menus, store, users
from audio_lessons.cli_spanish import os_reason
from audio_lessons.config import Settings
from audio_lessons.synth import Pyttsx3Synthesizer

log = logging.getLogger(__name__)


def _settings(ctx: click.Context) -> Settings:
    return ctx.obj["settings"]


def _db(ctx: click.Context):
    return store.connect(_settings(ctx).db_path)


def _password(confirm: bool = True) -> str:
    """From a hidden prompt at a terminal; else the first line of standard input (for scripts)."""
    if sys.stdin.isatty():
        return click.prompt("Clave", hide_input=True, confirmation_prompt=confirm)
    return sys.stdin.readline().rstrip("\r\n")


@click.group("users")
def users_group() -> None:
    """Cuentas del panel de administración.

    Ejemplo: pallay users add rosa --role admin
    """


@users_group.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(users.ROLES), required=True,
              help="admin: todo; editor: grabaciones, lecciones, menús, mensajes; "
                   "viewer: solo estadísticas.")
@click.pass_context
def users_add(ctx: click.Context, name: str, role: str) -> None:
    """Crea una cuenta; la clave se pide dos veces en una terminal, o se lee de la primera
    línea de la entrada estándar (``echo 'una clave larga' | pallay users add ...``).

    Ejemplo: pallay users add rosa --role editor
    """
    user = users.add(_db(ctx), name, role, _password())
    click.echo(f"Cuenta {user.name} creada ({user.role}).")


@users_group.command("list")
@click.pass_context
def users_list(ctx: click.Context) -> None:
    """Lista las cuentas y sus roles.

    Ejemplo: pallay users list
    """
    found = users.list_users(_db(ctx))
    if not found:
        click.echo("Aún no hay cuentas: pallay users add NOMBRE --role admin")
    for user in found:
        click.echo(f"{user.name:24s} {user.role:8s} desde {user.created_at[:10]}")


@users_group.command("passwd")
@click.argument("name")
@click.pass_context
def users_passwd(ctx: click.Context, name: str) -> None:
    """Pone una clave nueva a una cuenta (se pide, o se lee de la entrada estándar).

    Ejemplo: pallay users passwd rosa
    """
    users.set_password(_db(ctx), name, _password())
    click.echo(f"Clave de {name} cambiada.")


@click.group("menus")
def menus_group() -> None:
    """Menús y submenús: lo que escucha quien llama, nivel por nivel.

    Ejemplo: pallay menus list
    """


def _echo_level(level: menus.Level) -> None:
    indent = "  " * (level.depth - 1)
    click.echo(f"{indent}[{level.slug}] {level.title} ({len(level.items)} opciones"
               f"{', lleno' if level.full else ''})")
    for item in level.items:
        mark = "menú" if item.kind == "menu" else ("" if item.playable else "sin audio")
        click.echo(f"{indent}  {item.key}  {item.title}  {mark}".rstrip())
    for child in level.children:
        _echo_level(child)


@menus_group.command("list")
@click.pass_context
def menus_list(ctx: click.Context) -> None:
    """Muestra el árbol de menús con la tecla de cada opción.

    Ejemplo: pallay menus list
    """
    _echo_level(menus.tree(_db(ctx)))


@menus_group.command("add")
@click.argument("title")
@click.option("--parent", default=catalog.ROOT_MENU, show_default=True, help="Menú donde va.")
@click.option("--key", help="Su tecla en el menú de arriba (si no: la primera libre).")
@click.option("--gather", help="Teclas, separadas por comas, de las lecciones del menú de arriba que pasan a él.")
@click.pass_context
def menus_add(ctx: click.Context, title: str, parent: str, key: str | None,
              gather: str | None) -> None:
    """Crea un submenú y su título hablado (con voz sintética provisional).

    En un menú lleno, la lección de la última tecla pasa al nuevo submenú.

    Ejemplo: pallay menus add "más lecciones" --parent main
    """
    settings = _settings(ctx)
    keys = tuple(k.strip() for k in (gather or "").split(",") if k.strip())
    slug = menus.add_submenu(_db(ctx), settings,
                             Pyttsx3Synthesizer(settings.voice, settings.cache_dir),
                             title=title, parent=parent, key=key, gather=keys)
    click.echo(f"Menú {slug} creado dentro de {parent}.")


@menus_group.command("move")
@click.argument("lesson")
@click.argument("menu")
@click.option("--key", help="Tecla en ese menú (si no: la primera libre).")
@click.pass_context
def menus_move(ctx: click.Context, lesson: str, menu: str, key: str | None) -> None:
    """Mueve una lección (número o nombre corto) a un menú.

    Ejemplo: pallay menus move polvo mas-lecciones --key 2
    """
    moved = menus.move_lesson(_db(ctx), lesson, menu, key)
    click.echo(f"{moved.title}: tecla {moved.key} de {moved.menu}.")


@menus_group.command("swap")
@click.argument("menu")
@click.argument("key_a")
@click.argument("key_b")
@click.pass_context
def menus_swap(ctx: click.Context, menu: str, key_a: str, key_b: str) -> None:
    """Intercambia las opciones de dos teclas de un menú (cambia el orden que se escucha).

    Ejemplo: pallay menus swap main 1 2
    """
    menus.swap_keys(_db(ctx), menu, key_a, key_b)
    click.echo(f"Teclas {key_a} y {key_b} de {menu} intercambiadas.")


@menus_group.command("delete")
@click.argument("menu")
@click.pass_context
def menus_delete(ctx: click.Context, menu: str) -> None:
    """Borra un submenú vacío.

    Ejemplo: pallay menus delete mas-lecciones
    """
    menus.delete(_db(ctx), menu)
    click.echo(f"Menú {menu} borrado.")


# ---- serving -----------------------------------------------------------------------------------


def panel_url(settings: Settings) -> str:
    return f"http://{settings.admin.host}:{settings.admin.port}"


async def run_panel(settings: Settings) -> None:
    """The admin panel under waitress until cancelled (a thread beside the asyncio services)."""
    import waitress

    from admin import create_app

    app = create_app(settings)
    server = waitress.create_server(
        app, host=settings.admin.host, port=settings.admin.port, threads=settings.admin.threads,
        # waitress buffers a body before Flask sees it: stop far-too-big ones at its door too
        max_request_body_size=settings.admin.max_upload_mb * 1024 * 1024 * 2,
        ident="pallay", clear_untrusted_proxy_headers=True)
    log.info("admin panel on %s", panel_url(settings))
    if users.count(store.connect(settings.db_path)) == 0:
        log.warning("no panel user yet: create the first with `pallay users add NAME --role admin`")
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()

    def serve() -> None:
        try:
            server.run()
        finally:
            loop.call_soon_threadsafe(stopped.set)

    thread = threading.Thread(target=serve, name="admin-panel", daemon=True)
    thread.start()
    try:
        await stopped.wait()
    finally:
        server.close()
        server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)


@click.command("panel")
@click.option("--host", help="Dirección donde atiende (si no: [admin] host, 0.0.0.0).")
@click.option("--port", type=int, help="Puerto (si no: [admin] port, 8080).")
@click.pass_context
def panel(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Atiende solo el panel de administración (``pallay serve`` lo pone junto a la línea).

    Ejemplo: pallay panel --host 127.0.0.1 --port 8080
    """
    settings = with_address(_settings(ctx), host, port)
    click.echo(f"Panel de administración: {panel_url(settings)} (Ctrl-C para detener)", err=True)
    try:
        asyncio.run(run_panel(settings))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        raise click.ClickException(f"No se pudo abrir el panel: {os_reason(exc)}") from exc


def with_address(settings: Settings, host: str | None, port: int | None) -> Settings:
    admin = dataclasses.replace(settings.admin, host=host or settings.admin.host,
                                port=port or settings.admin.port)
    return dataclasses.replace(settings, admin=admin)


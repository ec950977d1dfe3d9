"""The panel's commands as a technician types them: users, menus, and the service beside the line."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from click.testing import CliRunner

from audio_lessons import catalog, store
from audio_lessons.cli import main
from tests.admin_panel import build
from tests.conftest import REPO, require_program


@pytest.fixture()
def data(tmp_path):
    require_program("ffmpeg")
    folder = tmp_path / "data"
    build(folder, lessons=7)  # the starter pack's shape: the main menu is full
    return folder


def run(data, *args, stdin: str | None = None):
    return CliRunner().invoke(main, ["--data", str(data), *args], input=stdin)


def test_users_add_reads_the_password_from_standard_input_and_lists_no_password(data):
    added = run(data, "users", "add", "Lucia", "--role", "editor", stdin="una clave larga\n")
    assert added.exit_code == 0 and "lucia" in added.output
    listed = run(data, "users", "list").output
    assert "lucia" in listed and "editor" in listed and "clave" not in listed
    short = run(data, "users", "add", "maria", "--role", "viewer", stdin="corta\n")
    assert short.exit_code == 1 and "al menos 8" in short.output
    again = run(data, "users", "add", "lucia", "--role", "viewer", stdin="una clave larga\n")
    assert again.exit_code == 1 and "Ya existe" in again.output
    bad_role = run(data, "users", "add", "maria", "--role", "jefa", stdin="una clave larga\n")
    assert bad_role.exit_code == 2


def test_users_passwd_changes_the_password(data):
    from audio_lessons import users
    assert run(data, "users", "passwd", "eva", stdin="otra clave nueva\n").exit_code == 0
    db = store.connect(data / "pallay.db")
    assert users.authenticate(db, "eva", "otra clave nueva", "cli").name == "eva"
    missing = run(data, "users", "passwd", "nadie", stdin="otra clave nueva\n")
    assert missing.exit_code == 1 and "No existe" in missing.output


def test_a_full_main_menu_grows_with_a_sub_menu_from_the_command_line(data):
    assert "lleno" in run(data, "menus", "list").output
    made = run(data, "menus", "add", "más lecciones")
    assert made.exit_code == 0, made.output
    db = store.connect(data / "pallay.db")
    assert catalog.get_lesson(db, "leccion-7").menu == "mas-lecciones"
    assert db.execute("SELECT synthetic FROM prompts WHERE name = 'title:menu:mas-lecciones'"
                      ).fetchone() == (1,)
    moved = run(data, "menus", "move", "leccion-6", "mas-lecciones", "--key", "3")
    assert moved.exit_code == 0 and "tecla 3" in moved.output
    assert run(data, "menus", "swap", "main", "1", "2").exit_code == 0
    assert catalog.get_lesson(db, "leccion-1").key == "2"
    listed = run(data, "menus", "list").output
    assert "[mas-lecciones] más lecciones" in listed and "Lección 6" in listed
    busy = run(data, "menus", "delete", "mas-lecciones")
    assert busy.exit_code == 1 and "no está vacío" in busy.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_pallay_serve_runs_the_panel_beside_the_phone_line(data):
    """The real command in a child process: both services start, the panel answers over HTTP."""
    port, agi = _free_port(), _free_port()
    env = {"PALLAY_IVR_LISTEN": f"127.0.0.1:{agi}", "PATH": "/usr/bin:/bin",
           "PALLAY_IVR_AMI_SECRET_FILE": str(data / "no-such-secret")}
    child = subprocess.Popen([shutil.which("pallay", path=str(REPO / ".venv" / "bin")) or
                              sys.executable, "--data", str(data), "serve", "--host", "127.0.0.1",
                              "--port", str(port)], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        page = None
        for _ in range(100):
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/entrar", timeout=2)
                break
            except OSError:
                time.sleep(0.1)  # waiting for the child to listen; bounded to 10 s
        assert page is not None and page.status == 200
        assert page.headers["Server"] == "pallay"  # waitress, not Flask's development server
        with socket.create_connection(("127.0.0.1", agi), timeout=2):
            pass  # the phone line's FastAGI port is open too
    finally:
        child.terminate()
        output = child.communicate(timeout=20)[0]
    assert f"Panel de administración: http://127.0.0.1:{port}" in output
    assert "pallay users add NOMBRE --role admin" in output

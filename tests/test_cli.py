"""The `pallay` command as a leader or installer uses it: real store, real media, real synthesis."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sqlite3
import subprocess
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from audio_lessons.cli import main
from tests.conftest import REPO, require_program


def all_commands(group: click.Group = main, prefix: str = "pallay"):
    for name, command in sorted(group.commands.items()):
        yield f"{prefix} {name}", command
        if isinstance(command, click.Group):
            yield from all_commands(command, f"{prefix} {name}")


def test_every_command_has_help_with_an_example_and_is_in_the_readme():
    readme = (REPO / "README.md").read_text()
    for path, command in all_commands():
        assert "Ejemplo: pallay" in (command.help or ""), f"{path} has no example"
        if not isinstance(command, click.Group):
            assert path in readme, f"README does not show `{path}`"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """A data folder after `pallay init` (the real starter pack)."""
    require_program("espeak-ng")
    folder = tmp_path_factory.mktemp("cli") / "data"
    result = CliRunner().invoke(main, ["--data", str(folder), "init"])
    assert result.exit_code == 0, result.output
    assert "7 lecciones" in result.output
    return folder


def run(data: Path, *args: str):
    return CliRunner().invoke(main, ["--data", str(data), *args], prog_name="pallay")


def test_init_twice_adds_nothing_and_lists_the_starter_lessons(data):
    again = run(data, "init")
    assert again.exit_code == 0 and "0 lecciones y 0 avisos añadidos" in again.output
    listed = json.loads(run(data, "lessons", "list", "--json").output)
    assert [le["key"] for le in listed] == [str(k) for k in range(1, 8)]
    assert all(le["recordings"]["es"]["synthetic"] for le in listed)


def test_a_whatsapp_voice_note_becomes_the_quechua_recording_of_a_lesson(data, tmp_path):
    require_program("ffmpeg")
    wav, note = tmp_path / "voz.wav", tmp_path / "nota de voz.opus"
    subprocess.run(["espeak-ng", "-v", "roa/es-419", "-w", str(wav),
                    "Allinllachu, mamakuna. Kunanqa allpa ñutumanta rimasun."], check=True)
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(wav), "-c:a", "libopus", "-f", "ogg",
                    str(note)], check=True)
    added = run(data, "lessons", "add", str(note), "--lesson", "polvo", "--language", "qu",
                "--speaker", "Rosa")
    assert added.exit_code == 0, added.output
    [lesson] = [le for le in json.loads(run(data, "lessons", "list", "--json").output)
                if le["slug"] == "polvo"]
    recording = lesson["recordings"]["qu"]
    assert recording["speaker"] == "Rosa" and not recording["synthetic"]
    assert lesson["recordings"]["es"]["synthetic"]  # the Spanish placeholder stays beside it
    assert (data / "media" / f"{recording['media']}.phone.wav").exists()


def test_a_new_lesson_in_a_full_menu_is_refused_before_any_audio_is_written(data, tmp_path):
    wav = tmp_path / "agua.wav"
    subprocess.run(["espeak-ng", "-v", "roa/es-419", "-w", str(wav), "El agua limpia."],
                   check=True)
    before = sorted(p.name for p in (data / "media").iterdir())
    for extra in ([], ["--key", "9"]):  # main menu full; 9 is reserved for the language
        result = run(data, "lessons", "add", str(wav), "--title", "el agua", *extra)
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert re.search(r"máximo|reservad", result.output), result.output
    assert sorted(p.name for p in (data / "media").iterdir()) == before
    assert "el agua" not in run(data, "lessons", "list").output


def test_a_text_file_named_mp3_gets_a_spanish_error_and_no_traceback(data, tmp_path):
    fake = tmp_path / "leccion.mp3"
    fake.write_text("esto no es audio")
    before = sorted(p.name for p in (data / "media").iterdir())
    result = run(data, "lessons", "add", str(fake), "--lesson", "polvo", "--language", "qu")
    assert result.exit_code == 1
    assert "Error:" in result.output and "Traceback" not in result.output
    assert re.search(r"audio|grabación", result.output)
    assert sorted(p.name for p in (data / "media").iterdir()) == before


def test_stats_and_backup(data, tmp_path):
    stats = json.loads(run(data, "stats", "--json").output)
    assert len(stats["lessons"]) == 7 and stats["totals"]["listens"] == 0
    target = tmp_path / "copia.db"
    assert run(data, "db", "backup", str(target)).exit_code == 0
    assert target.stat().st_size > 10_000
    again = run(data, "db", "backup", str(target))
    assert again.exit_code == 1 and "Ya existe" in again.output


# ---- hostile values: a Spanish message, no traceback, nothing left behind ----------------------

def refused(result, *patterns: str) -> None:
    """A clean refusal: exit 1, click's "Error:" line, every pattern in it, no exception escaped."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Error:" in result.output and "Traceback" not in result.output
    for pattern in patterns:
        assert re.search(pattern, result.output), (pattern, result.output)


def media_state(data: Path) -> tuple[list[str], int]:
    conn = sqlite3.connect(data / "pallay.db")
    rows = conn.execute("SELECT count(*) FROM media").fetchone()[0]
    conn.close()
    return sorted(p.name for p in (data / "media").iterdir()), rows


@pytest.fixture
def speech_wav(tmp_path) -> Path:
    wav = tmp_path / "voz.wav"
    subprocess.run(["espeak-ng", "-v", "roa/es-419", "-w", str(wav), "Cuidemos el agua, compañeras."],
                   check=True)
    return wav


def test_a_refused_language_leaves_no_media_behind(data, speech_wav):
    before = media_state(data)
    refused(run(data, "lessons", "add", str(speech_wav), "--lesson", "polvo", "--language", "xx"),
            "idioma «xx» no está configurado")
    assert media_state(data) == before


@pytest.mark.parametrize("folder", ["/proc/pallay", "/sys/pallay", "/proc"])
def test_a_data_folder_where_nothing_can_be_created_gets_a_message(folder):
    for args in (["init"], ["lessons", "list"], ["stats"]):
        refused(CliRunner().invoke(main, ["--data", folder, *args]),
                f"No se puede usar la carpeta de datos «{folder}»", "--data")
    assert not Path(folder, "pallay.db").exists()


def test_titles_keywords_and_speakers_are_limited_to_what_a_menu_can_say(data, speech_wav):
    before, lessons = media_state(data), run(data, "lessons", "list").output
    add = ("lessons", "add", str(speech_wav))
    refused(run(data, *add, "--title", "x" * 5000), "título tiene 5000 caracteres", "máximo es 60")
    refused(run(data, *add, "--title", "el agua", "--keywords", "a" * 200), "demasiado larga")
    refused(run(data, *add, "--title", "el agua", "--keywords", "uno,dos,tres,cuatro,cinco,seis,siete"),
            "7 palabras clave", "máximo es 6")
    refused(run(data, *add, "--lesson", "polvo", "--speaker", "Rosa " * 100), "máximo es 60")
    assert media_state(data) == before and run(data, "lessons", "list").output == lessons


def test_dates_are_read_as_a_leader_writes_them(data):
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=-5))).date()
    for typed, day in (("ayer", today - dt.timedelta(days=1)), ("hoy", today),
                       ("30/11/2026", dt.date(2026, 11, 30)), ("2026-11-30", dt.date(2026, 11, 30))):
        shown = run(data, "stats", "--since", typed, "--json")
        assert shown.exit_code == 0, shown.output
        assert json.loads(shown.output)["filters"]["since"] == day.isoformat()
    refused(run(data, "stats", "--since", "yesterday"), "No se entiende la fecha «yesterday»",
            "30/11/2026", "ayer")
    refused(run(data, "stats", "--since", "31/02/2026"), "No se entiende la fecha")
    refused(run(data, "stats", "--since", "2026-11-30", "--until", "2026-11-01"), "posterior")


def test_a_refused_upload_is_logged_under_its_own_name_not_a_temporary_path(data, tmp_path, caplog):
    fake = tmp_path / "leccion.mp3"
    fake.write_text("esto no es audio")
    caplog.set_level(logging.WARNING, logger="audio_lessons.media")
    refused(run(data, "lessons", "add", str(fake), "--lesson", "polvo"), "audio")
    [line] = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()]
    assert "leccion.mp3" in line and ".tmp-" not in line and str(data) not in line, line


ENGLISH = re.compile(r"Usage|Options|Commands|Error: (No such|Missing|Invalid|Got)|Try '|"
                     r"does not exist|is not one of|Did you mean|Show this|\[OPTIONS\]|COMMAND|"
                     r"\bTEXT\b|INTEGER|DIRECTORY|\bFILE\b|default:|required")


def test_the_cli_speaks_spanish_even_when_the_mistake_is_in_the_command_line(data):
    mistakes = [["--bogus"], ["bogus"], ["lessons", "add"], ["lessons", "add", "nada.wav",
                "--title", "x"], ["stats", "--channel", "radio"], ["lessons", "list", "--jsn"],
                ["stats", "--since"], ["lessons", "list", "sobra"], ["call", "1", "--lesson", "x"]]
    for args in mistakes:
        said = run(data, *args)
        assert said.exit_code == 2 and "Error: " in said.output, (args, said.output)
        assert not ENGLISH.search(said.output), (args, said.output)
    for path, _ in all_commands():
        shown = CliRunner().invoke(main, [*path.split()[1:], "--help"], prog_name="pallay")
        assert shown.exit_code == 0 and "Uso:" in shown.output and "Opciones" in shown.output
        assert not ENGLISH.search(shown.output), (path, ENGLISH.search(shown.output), shown.output)


def test_a_command_first_run_on_its_own_still_gets_spanish_help_from_pallay():
    from ivr.commands import call

    CliRunner().invoke(call, ["--help"])  # click builds and keeps its --help option here
    shown = CliRunner().invoke(main, ["call", "--help"], prog_name="pallay")
    assert "Muestra esta ayuda y termina." in shown.output, shown.output

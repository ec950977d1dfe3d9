"""The `pallay` command as a leader or installer uses it: real store, real media, real synthesis."""

from __future__ import annotations

import json
import re
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
        assert "Example: pallay" in (command.help or ""), f"{path} has no example"
        if not isinstance(command, click.Group):
            assert path in readme, f"README does not show `{path}`"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """A data folder after `pallay init` (the real starter pack)."""
    require_program("espeak-ng")
    folder = tmp_path_factory.mktemp("cli") / "data"
    result = CliRunner().invoke(main, ["--data", str(folder), "init"])
    assert result.exit_code == 0, result.output
    assert "7 lessons" in result.output
    return folder


def run(data: Path, *args: str):
    return CliRunner().invoke(main, ["--data", str(data), *args])


def test_init_twice_adds_nothing_and_lists_the_starter_lessons(data):
    again = run(data, "init")
    assert again.exit_code == 0 and "0 lessons and 0 prompts added" in again.output
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
    assert again.exit_code == 1 and "already exists" in again.output

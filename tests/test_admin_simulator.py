"""The phone simulator: the panel drives the shared session driver one HTTP request at a time."""

from __future__ import annotations

import pytest

from admin import create_app
from audio_lessons import store
from audio_lessons.synth import FakeSynthesizer
from tests.admin_panel import build, login, token
from tests.conftest import require_program


@pytest.fixture()
def settings(tmp_path):
    require_program("ffmpeg")
    return build(tmp_path / "data", lessons=2)


def _client(settings, name: str = "eva"):
    app = create_app(settings, {"TESTING": True}, synthesizer=FakeSynthesizer(settings.cache_dir))
    client = app.test_client()
    login(client, name)
    return client


def _send(client, url: str, body: dict | None = None) -> dict:
    answer = client.post(url, json=body or {}, headers={"X-CSRF-Token": token(client)})
    assert answer.status_code == 200, answer.text
    return answer.get_json()


def test_a_simulated_call_plays_prompts_takes_keys_and_logs_as_simulator(settings):
    client = _client(settings)
    assert "Simulador de llamada" in client.get("/simulador/").text
    step = _send(client, "/simulador/llamar")
    assert step["do"] == "play" and step["audio"][0].startswith("/lecciones/audio/")
    assert client.get(step["audio"][0]).status_code == 200  # what the page plays is there
    for _ in range(12):  # answer every question with 1 until a lesson plays (bounded)
        if step["do"] == "lesson":
            break
        step = _send(client, "/simulador/paso", {"key": "1" if "1" in step.get("keys", "") else None})
    assert step["do"] == "lesson", step
    step = _send(client, "/simulador/paso", {"key": None, "position_ms": 60_000})
    assert step["do"] in ("play", "wait")
    assert _send(client, "/simulador/paso", {"hangup": True})["do"] == "end"
    db = store.connect(settings.db_path)
    channels = {row[0] for row in db.execute("SELECT DISTINCT channel FROM nav_events")}
    assert channels == {"simulator"}
    listen = db.execute("SELECT channel, device, lesson_id, completed FROM listen_events").fetchall()
    assert listen == [("simulator", "panel-eva", 1, 1)]
    steps = [r[0] for r in db.execute("SELECT step FROM nav_events ORDER BY rowid")]
    assert steps[0] == "welcome" and steps[-1] == "hangup"


def test_a_step_without_a_call_or_its_token_is_refused_and_viewers_cannot_simulate(settings):
    client = _client(settings)
    assert client.post("/simulador/paso", json={}, headers={"X-CSRF-Token": token(client)}) \
        .status_code == 404
    assert client.post("/simulador/llamar", json={}).status_code == 400  # no CSRF token
    assert _client(settings, "vero").get("/simulador/").status_code == 403

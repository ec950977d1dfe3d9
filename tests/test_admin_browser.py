"""A leader's afternoon in a real Chromium (Debian's, driven by Playwright) on the panel under waitress.

Log in, make room in the full main menu with a new sub-menu, create a lesson there, upload its
recording, hear it, record the Quechua one with the (fake) microphone, publish it, see a listen in
the dashboard and export it as CSV. Every page is also opened on a 360 px wide phone screen.
Screenshots go to a temporary folder (``PALLAY_SCREENSHOTS`` to choose it), never to the repository.
"""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import pytest

from admin import create_app
from audio_lessons import catalog, events, store
from audio_lessons.synth import Pyttsx3Synthesizer
from tests.admin_panel import PASSWORD, build, speech_file
from tests.conftest import require, require_program

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream", "--autoplay-policy=no-user-gesture-required"]
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("PALLAY_SCREENSHOTS") or tmp_path_factory.mktemp("screens"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def panel(tmp_path_factory):
    """The real panel (waitress, real espeak-ng for spoken titles) on a free port."""
    require_program("ffmpeg")
    require_program("espeak-ng")
    import waitress  # a dependency of pallay: missing means a broken install, not a skip
    data = tmp_path_factory.mktemp("browser") / "data"
    settings = build(data, lessons=7)  # like the starter pack: the main menu is full
    settings.messages_dir.mkdir(parents=True)
    speech_file(settings.messages_dir / "m1.wav", "Hola, quiero saber del mercurio.", ["-ar", "8000"])
    db = store.connect(settings.db_path)
    with store.write(db):
        db["messages"].insert({"id": "m1", "listener": "ab" * 16, "channel": "phone",
                               "device": "line-1", "language": "es", "path": "m1.wav",
                               "duration_ms": 2500, "created_at": store.now(), "heard": 0,
                               "urgent": 1, "tags": '["mercurio"]', "note": "Llamar a su grupo"})
    db.conn.close()
    app = create_app(settings, synthesizer=Pyttsx3Synthesizer(settings.voice, settings.cache_dir))
    server = waitress.create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield settings, f"http://127.0.0.1:{server.effective_port}"
    server.close()


@pytest.fixture(scope="module")
def microphone(tmp_path_factory) -> Path:
    """What the fake microphone hears: a real spoken sentence, as Chromium wants it (WAV)."""
    require_program("espeak-ng")
    folder = tmp_path_factory.mktemp("mic")
    return speech_file(folder / "mic.wav", "Allinllachu mamakuna, kunanqa yakumanta rimasun.",
                       ["-ar", "48000", "-ac", "1", "-c:a", "pcm_s16le"])


@pytest.fixture(scope="module")
def browser(microphone):
    require(Path(CHROMIUM).exists(), "Debian's chromium is not installed (make install-test)")
    from playwright import sync_api  # the test extra: missing fails, never skips
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=[
            *ARGS, f"--use-file-for-fake-audio-capture={microphone}"])
        yield chromium
        chromium.close()


def _log_in(page, base: str, name: str = "eva") -> None:
    page.goto(f"{base}/entrar")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button.primary")
    page.wait_for_url(f"{base}/lecciones/")


def test_a_leader_grows_the_menu_records_publishes_and_sees_the_listen(panel, browser, shots,
                                                                       tmp_path):
    settings, base = panel
    db = store.connect(settings.db_path)
    context = browser.new_context(viewport=DESKTOP, accept_downloads=True, locale="es-PE")
    page = context.new_page()
    _log_in(page, base)
    page.screenshot(path=shots / "desktop-lessons.png", full_page=True)

    # The main menu is full: the message says what to do and the button does it.
    page.click("text=Nueva lección")
    page.fill("input[name=title]", "el agua limpia")
    page.click("button:has-text('Crear lección')")
    assert page.locator(".flash.error").inner_text().startswith("El menú «main» ya tiene 7 opciones")
    page.screenshot(path=shots / "desktop-full-menu.png", full_page=True)
    page.click("button:has-text('Crear el submenú «más lecciones»')")
    page.wait_for_url(f"{base}/menus/#menu-mas-lecciones")
    assert "Nivel 2: más lecciones" in page.inner_text("#menu-mas-lecciones")
    page.screenshot(path=shots / "desktop-menus.png", full_page=True)

    # A new lesson in the new sub-menu.
    page.goto(f"{base}/lecciones/nueva")
    page.fill("input[name=title]", "el agua limpia")
    page.select_option("select[name=menu]", "mas-lecciones")
    page.fill("input[name=keywords]", "agua")
    page.click("button:has-text('Crear lección')")
    lesson = catalog.get_lesson(db, "el-agua-limpia")
    page.wait_for_url(f"{base}/lecciones/{lesson.id}")

    # Upload a WhatsApp-style voice note, with progress, then hear it.
    note = speech_file(tmp_path / "nota de voz.ogg", "Compañeras, el agua limpia cuida la salud.")
    form = page.locator("form[data-upload]")
    form.locator("input[name=speaker]").fill("Rosa Quispe")
    form.locator("input[name=consent]").check()
    form.locator("input[type=file]").set_input_files(str(note))
    form.locator("[data-submit]").click()
    status = form.locator("[data-status]")
    status.filter(has_text="Grabación guardada").wait_for(timeout=60_000)
    page.locator("[data-refresh] .recording").first.filter(has_text="Rosa Quispe").wait_for()
    player = form.locator("audio[data-result]")
    assert player.is_visible()
    player.evaluate("a => a.play()")  # rejects (fails the test) if the audio cannot be decoded
    page.wait_for_function("a => a.currentTime > 0", arg=player.element_handle())
    assert player.evaluate("a => { a.pause(); return a.duration; }") > 1.0
    page.screenshot(path=shots / "desktop-uploaded.png", full_page=True)

    # Record the Quechua version with the microphone: she speaks about three seconds.
    form.locator("select[name=language]").select_option("qu")
    form.locator("[data-record]").click()
    status.filter(has_text="Grabando").wait_for()
    page.wait_for_timeout(3000)  # the leader speaking, not a wait for the page
    form.locator("[data-stop]").click()
    status.filter(has_text="Grabación lista").wait_for()
    form.locator("[data-submit]").click()
    status.filter(has_text="Grabación guardada").wait_for(timeout=60_000)
    recorded = catalog.get_lesson(db, lesson.id).recordings
    assert set(recorded) == {"es", "qu"} and recorded["qu"].speaker == "Rosa Quispe"
    assert recorded["qu"].duration_ms > 1500 and not recorded["qu"].synthetic
    source = db.execute("SELECT source_format FROM media WHERE hash = ?",
                        [recorded["qu"].media]).fetchone()[0]
    assert "webm" in source or "matroska" in source  # what the browser's recorder made

    # Publish it.
    page.reload()
    page.check("input[name=published]")
    page.click("button:has-text('Guardar')")
    page.locator(".flash.ok").filter(has_text="Cambios guardados").wait_for()
    assert catalog.get_lesson(db, lesson.id).published
    page.goto(f"{base}/menus/")
    assert "no se oye" not in page.inner_text("#menu-mas-lecciones")
    page.screenshot(path=shots / "desktop-lesson-published.png", full_page=True)

    # The phone line reports a listen; the dashboard shows it and exports it.
    events.record_listen(db, events.ListenEvent(
        events.new_id(), "phone", "line-1", "ab" * 16, lesson.id, "qu", "voice",
        store.now(), 3.0, 3000, recorded["qu"].duration_ms))
    page.goto(f"{base}/estadisticas/")
    assert page.locator(".tile b").first.inner_text() == "1"
    assert page.locator(".hbar").first.inner_text().split() == ["el", "agua", "limpia", "1"]
    page.screenshot(path=shots / "desktop-dashboard.png", full_page=True)
    with page.expect_download() as download:
        page.locator("a.csv").first.click()
    csv = Path(download.value.path()).read_text(encoding="utf-8-sig")
    assert csv.splitlines()[0].startswith("lección,escuchas,oyentes")
    assert any(line.startswith("el agua limpia,1,1") for line in csv.splitlines())
    context.close()


PAGES = ["/lecciones/", "/lecciones/1", "/lecciones/nueva", "/menus/", "/avisos/",
         "/avisos/pendientes", "/mensajes/", "/mensajes/m1", "/linea/", "/simulador/", "/estadisticas/",
         "/usuarios/"]


def test_the_simulator_plays_the_call_and_takes_keys(panel, browser, shots):
    settings, base = panel
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    _log_in(page, base)
    page.goto(f"{base}/simulador/")
    page.click("[data-sim-call]")
    status = page.locator("[data-sim-status]")
    status.filter(has_text="Escuchando").wait_for()
    # A function, not an expression: polling an expression needs eval(), which the panel's CSP forbids.
    page.wait_for_function("() => document.querySelector('[data-sim-audio]').currentTime > 0")
    page.locator("[data-key='1']:not([disabled])").click()  # Spanish, or the first lesson
    page.screenshot(path=shots / "phone-simulator-call.png", full_page=True)
    page.click("[data-sim-hangup]")
    status.filter(has_text="Llamada terminada").wait_for()
    db = store.connect(settings.db_path)
    steps = [r[0] for r in db.execute("SELECT step FROM nav_events WHERE channel = 'simulator' "
                                      "ORDER BY rowid")]
    assert steps[0] == "welcome" and steps[-1] == "hangup" and len(steps) >= 3
    context.close()


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_every_page_fits_the_screen_and_loads_nothing_from_the_internet(panel, browser, shots,
                                                                         size):
    _settings, base = panel
    context = browser.new_context(viewport=PHONE if size == "phone" else DESKTOP)
    page = context.new_page()
    outside = []
    page.on("request", lambda r: None if r.url.startswith(base) else outside.append(r.url))
    page.goto(f"{base}/entrar")
    page.screenshot(path=shots / f"{size}-login.png")
    page.fill("input[name=name]", "ana")
    page.fill("input[name=password]", PASSWORD)
    page.click("button.primary")
    page.wait_for_url(f"{base}/lecciones/")
    for path in PAGES:
        page.goto(base + path)
        name = path.strip("/").replace("/", "-")
        page.screenshot(path=shots / f"{size}-{name}.png", full_page=True)
        width = page.evaluate("document.scrollingElement.scrollWidth")
        assert width <= page.viewport_size["width"], f"{path} is {width} px wide"
    assert not outside, outside
    context.close()


def test_the_screenshots_are_not_in_the_repository(shots):
    from tests.conftest import REPO
    tracked = subprocess.run(["git", "-C", str(REPO), "ls-files", "*.png"], capture_output=True,
                             text=True, check=True).stdout
    assert tracked.strip() == ""
    assert REPO not in shots.parents

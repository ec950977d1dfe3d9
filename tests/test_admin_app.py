"""The admin panel through Flask's test client: every route, role and error path, on a real store.

Media goes through the real ffmpeg pipeline; speech for prompts comes from the fake synthesizer
(the real espeak-ng is exercised by ``pallay init`` in test_cli and by the browser test).
"""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
import time

import pytest

from admin import create_app
from audio_lessons import catalog, config, events, menus, store
from audio_lessons.synth import FakeSynthesizer
from tests.admin_panel import PASSWORD, build, csrf, login, speech_file, token
from tests.conftest import SPHINX_MODEL, require, require_program

EDITOR_PAGES = ["/lecciones/", "/lecciones/nueva", "/lecciones/1", "/avisos/", "/avisos/pendientes",
                "/menus/", "/mensajes/"]
VIEWER_PAGES = ["/estadisticas/", "/estadisticas/lecciones.csv"]
ADMIN_PAGES = ["/usuarios/"]


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """Built once (media preparation is the slow part); each test gets its own copy."""
    require_program("ffmpeg")
    folder = tmp_path_factory.mktemp("panel") / "data"
    build(folder)
    return folder


@pytest.fixture()
def settings(template, tmp_path):
    shutil.copytree(template, tmp_path / "data")
    return config.load(tmp_path / "data", environ={})


@pytest.fixture()
def app(settings):
    return create_app(settings, {"TESTING": True}, synthesizer=FakeSynthesizer(settings.cache_dir))


@pytest.fixture()
def db(settings):
    conn = store.connect(settings.db_path)
    yield conn
    conn.conn.close()


def client_as(app, name: str):
    client = app.test_client()
    assert login(client, name).status_code == 302
    return client


@pytest.fixture()
def editor(app):
    return client_as(app, "eva")


def post(client, url: str, data: dict | None = None, **kw):
    return client.post(url, data={"csrf": token(client), **(data or {})}, **kw)


def fetch(client, url: str, data: dict, **kw):
    """As the page's script sends a form: JSON back."""
    return post(client, url, data, headers={"X-Requested-With": "fetch"}, **kw)


# ---- log-in, sessions, roles, CSRF --------------------------------------------------------------

@pytest.mark.parametrize("url", EDITOR_PAGES + VIEWER_PAGES + ADMIN_PAGES + ["/"])
def test_every_page_without_log_in_goes_to_the_log_in_page(app, url):
    answer = app.test_client().get(url)
    assert answer.status_code == 302 and answer.headers["Location"].startswith("/entrar")


def test_log_in_with_a_wrong_password_says_so_in_spanish_and_then_throttles(app):
    client = app.test_client()
    for _ in range(5):
        wrong = login(client, "eva", "no-es-esta")
        assert wrong.status_code == 401 and "Usuario o contraseña incorrectos" in wrong.text
    blocked = login(client, "eva")  # even the right password waits now
    assert blocked.status_code == 401 and "Demasiados intentos" in blocked.text
    assert login(app.test_client(), "ana").status_code == 302  # other names are not blocked


def test_the_session_cookie_works_over_plain_http_and_is_not_readable_by_scripts(app):
    answer = login(app.test_client(), "eva")
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    page = app.test_client().get("/entrar")
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]  # no script from outside
    assert page.headers["X-Content-Type-Options"] == "nosniff"


def test_a_session_idle_past_its_lifetime_must_log_in_again(app):
    client = client_as(app, "eva")
    with client.session_transaction() as session:
        session["seen"] = int(time.time()) - 9 * 3600  # default lifetime: 8 hours
    answer = client.get("/lecciones/")
    assert answer.status_code == 302 and answer.headers["Location"].startswith("/entrar")


def test_log_in_never_redirects_to_another_site(app):
    client = app.test_client()
    page = client.get("/entrar?next=//malo.example/x")
    answer = client.post("/entrar?next=//malo.example/x",
                         data={"csrf": csrf(page.text), "name": "eva", "password": PASSWORD})
    assert answer.headers["Location"] == "/"


def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(editor, db):
    answer = editor.post("/lecciones/nueva", data={"title": "sin token"})
    assert answer.status_code == 400 and "El formulario caducó" in answer.text
    wrong = editor.post("/lecciones/nueva", data={"title": "token falso", "csrf": "x" * 43})
    assert wrong.status_code == 400
    assert not any(le.title in ("sin token", "token falso") for le in catalog.list_lessons(db))
    assert editor.post("/salir").status_code == 400  # even logging out needs it


@pytest.mark.parametrize("url", EDITOR_PAGES + ADMIN_PAGES)
def test_a_viewer_cannot_reach_editor_or_admin_pages(app, url):
    answer = client_as(app, "vero").get(url)
    assert answer.status_code == 403 and "Sin permiso" in answer.text


def test_a_viewer_reads_statistics_and_an_editor_cannot_manage_users(app):
    assert client_as(app, "vero").get("/estadisticas/").status_code == 200
    assert client_as(app, "vero").get("/").headers["Location"] == "/estadisticas/"
    editor = client_as(app, "eva")
    assert editor.get("/usuarios/").status_code == 403
    assert post(editor, "/usuarios/", {"name": "mala", "role": "admin",
                                       "password": "x" * 12}).status_code == 403


def test_a_viewer_cannot_post_to_editor_forms(app, db):
    viewer = client_as(app, "vero")
    assert post(viewer, "/lecciones/nueva", {"title": "intrusa"}).status_code == 403
    assert "intrusa" not in [le.title for le in catalog.list_lessons(db)]


@pytest.mark.parametrize("url", EDITOR_PAGES + VIEWER_PAGES + ADMIN_PAGES)
def test_every_page_opens_for_an_admin(app, url):
    assert client_as(app, "ana").get(url).status_code == 200


def test_log_out_ends_the_session(editor):
    assert post(editor, "/salir").status_code == 302
    assert editor.get("/lecciones/").status_code == 302


def test_an_unknown_page_is_a_friendly_404(editor):
    answer = editor.get("/no-existe")
    assert answer.status_code == 404 and "Esta página no existe" in answer.text


def test_english_is_one_click_away_and_spanish_is_the_default(editor):
    assert "Lecciones" in editor.get("/lecciones/").text
    editor.get("/idioma/en")
    page = editor.get("/lecciones/").text
    assert "New lesson" in page and "Nueva lección" not in page


# ---- lessons and recordings ---------------------------------------------------------------------

def test_script_in_a_title_is_shown_as_text(editor, db):
    menus.swap_keys(db, "main", "3", "4")  # frees nothing; the main menu has 3 of 7
    answer = post(editor, "/lecciones/nueva", {"title": "<script>alert(1)</script>", "menu": "main"})
    assert answer.status_code == 302
    page = editor.get(answer.headers["Location"]).text
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_a_new_lesson_gets_its_spoken_title_and_waits_unpublished(editor, db):
    answer = post(editor, "/lecciones/nueva", {"title": "el agua limpia", "key": "5",
                                               "keywords": "agua"})
    lesson = catalog.get_lesson(db, "el-agua-limpia")
    assert answer.headers["Location"] == f"/lecciones/{lesson.id}"
    assert lesson.key == "5" and lesson.keywords == ("agua",) and not lesson.published
    assert db.execute("SELECT synthetic FROM prompts WHERE name = 'title:el-agua-limpia'"
                      ).fetchone() == (1,)
    refused = post(editor, f"/lecciones/{lesson.id}", {"title": "el agua limpia",
                                                        "published": "1"})
    assert refused.status_code == 302
    assert "sin grabación no se puede publicar" in editor.get(f"/lecciones/{lesson.id}").text


def test_a_key_in_use_or_reserved_is_refused_in_spanish(editor):
    taken = post(editor, "/lecciones/nueva", {"title": "otra", "key": "1"})
    assert taken.status_code == 422 and "ya está en uso" in taken.text
    reserved = post(editor, "/lecciones/nueva", {"title": "otra", "key": "9"})
    assert reserved.status_code == 422 and "reservadas" in reserved.text


def test_a_full_menu_shows_what_to_do_and_the_button_that_does_it(editor, db):
    for n in range(4, 8):
        catalog.add_lesson(db, slug=f"extra-{n}", title=f"Extra {n}", key=str(n))
    full = post(editor, "/lecciones/nueva", {"title": "la octava", "menu": "main"})
    assert full.status_code == 422 and "cree un submenú" in full.text
    assert "Crear el submenú «más lecciones»" in full.text
    made = post(editor, "/menus/nuevo", {"parent": "main", "title": "más lecciones"})
    assert made.status_code == 302
    tree = menus.tree(db)
    sub = menus.find(tree, "mas-lecciones")
    assert [i.key for i in tree.items][-1] == "7" and tree.items[-1].kind == "menu"
    assert [i.title for i in sub.items] == ["Extra 7"]
    assert db.execute("SELECT 1 FROM prompts WHERE name = 'title:menu:mas-lecciones'").fetchone()
    still_full = post(editor, "/lecciones/nueva", {"title": "la octava", "menu": "main"})
    assert still_full.status_code == 422 and "Crear la lección en «más lecciones»" in still_full.text
    eighth = post(editor, "/lecciones/nueva", {"title": "la octava", "menu": "mas-lecciones"})
    assert eighth.status_code == 302
    assert catalog.get_lesson(db, "la-octava").menu == "mas-lecciones"


def _upload(client, lesson_id: int, path, name: str | None = None, **fields):
    data = {"language": "es", "speaker": "Rosa Quispe", "consent": "1", **fields,
            "audio": (io.BytesIO(path.read_bytes()), name or path.name)}
    return fetch(client, f"/lecciones/{lesson_id}/grabacion", data,
                 content_type="multipart/form-data")


def test_uploading_a_voice_note_replaces_the_placeholder_and_keeps_it_restorable(
        editor, db, settings, tmp_path):
    require_program("espeak-ng")
    note = speech_file(tmp_path / "nota.ogg")
    answer = _upload(editor, 1, note)
    body = answer.get_json()
    assert answer.status_code == 200 and body["ok"] and "Grabación guardada" in body["message"]
    heard = editor.get(body["audio"])
    assert heard.status_code == 200 and heard.mimetype == "audio/wav" and heard.data[:4] == b"RIFF"
    recording = catalog.get_lesson(db, 1).recordings["es"]
    assert recording.speaker == "Rosa Quispe" and not recording.synthetic
    consent = db.execute("SELECT consent_at, added_by FROM recordings WHERE lesson_id = 1").fetchone()
    assert consent[0] and consent[1] == "eva"
    old = db.execute("SELECT media, synthetic FROM recording_history WHERE lesson_id = 1").fetchone()
    assert old[1] == 1
    page = editor.get("/lecciones/1").text
    assert "Grabaciones anteriores" in page and "Restaurar" in page
    restored = post(editor, "/lecciones/1/restaurar", {"language": "es", "media": old[0]})
    assert restored.status_code == 302
    assert catalog.get_lesson(db, 1).recordings["es"].media == old[0]
    assert db.execute("SELECT count(*) FROM recording_history WHERE lesson_id = 1 AND media = ?",
                      [recording.media]).fetchone()[0] == 1  # her voice is kept in turn


def test_a_recording_without_her_consent_is_refused(editor, db, tmp_path):
    require_program("espeak-ng")
    note = speech_file(tmp_path / "nota.ogg")
    answer = _upload(editor, 1, note, consent="")
    assert answer.status_code == 422 and "permiso" in answer.get_json()["message"]
    assert catalog.get_lesson(db, 1).recordings["es"].synthetic


def test_a_non_audio_file_gets_a_clear_spanish_message_and_nothing_is_stored(editor, db, settings,
                                                                             tmp_path):
    fake = tmp_path / "leccion.mp3"
    fake.write_text("esto no es un audio, es texto")
    before = sorted(p.name for p in settings.media_dir.iterdir())
    answer = _upload(editor, 1, fake)
    assert answer.status_code == 422
    assert "no es un audio" in answer.get_json()["message"]
    assert sorted(p.name for p in settings.media_dir.iterdir()) == before
    assert not list((settings.cache_dir / "uploads").iterdir())
    plain = post(editor, "/lecciones/1/grabacion", {"language": "es", "speaker": "Rosa",
                                                    "consent": "1",
                                                    "audio": (io.BytesIO(b"hola"), "x.wav")},
                 content_type="multipart/form-data")  # without the script: a flash message
    assert plain.status_code == 302
    assert "no es un audio" in editor.get("/lecciones/1").text


def test_a_huge_upload_gets_a_friendly_413_page(settings):
    app = create_app(settings, {"TESTING": True, "MAX_CONTENT_LENGTH": 1024 * 1024},
                     synthesizer=FakeSynthesizer(settings.cache_dir))
    client = client_as(app, "eva")
    big = io.BytesIO(b"\0" * (2 * 1024 * 1024))
    answer = client.post("/lecciones/1/grabacion", data={"audio": (big, "grande.wav")},
                         content_type="multipart/form-data")
    assert answer.status_code == 413
    assert "Archivo demasiado grande" in answer.text and "1 MB" in answer.text


def test_a_path_traversal_file_name_stays_harmless(editor, db, settings, tmp_path):
    require_program("espeak-ng")
    note = speech_file(tmp_path / "n.ogg")
    answer = _upload(editor, 2, note, name="../../../../tmp/../etc/evil.ogg")
    assert answer.status_code == 200
    recording = catalog.get_lesson(db, 2).recordings["es"]
    name = db.execute("SELECT original_name FROM media WHERE hash = ?",
                      [recording.media]).fetchone()[0]
    assert name == "evil.ogg"
    assert not (settings.data_dir.parent / "etc").exists()
    for bad in ("../../secret.key", "%2e%2e%2fsecret", "0" * 31 + "/.phone"):
        assert editor.get(f"/lecciones/audio/{bad}.phone.wav").status_code == 404
    assert editor.get(f"/lecciones/audio/{recording.media}.orig.wav").status_code == 404


def test_editing_a_lesson_moves_it_and_sets_a_quiz(editor, db):
    answer = post(editor, "/lecciones/2", {"title": "El terreno firme", "topic": "suelo",
                                           "menu": "main", "key": "6", "keywords": "suelo, piedra",
                                           "published": "1", "quiz": "¿Es seguro? Marque uno o dos.",
                                           "quiz_answer": "2"})
    assert answer.status_code == 302
    lesson = catalog.get_lesson(db, 2)
    assert (lesson.title, lesson.key, lesson.keywords, lesson.quiz_answer) == (
        "El terreno firme", "6", ("suelo", "piedra"), "2")
    assert db.execute("SELECT text FROM prompts WHERE name = 'quiz:leccion-2'").fetchone()[0] \
        .startswith("¿Es seguro?")


def test_deleting_a_lesson_keeps_its_statistics(editor, db):
    _listen(db, 3)
    assert post(editor, "/lecciones/3/borrar").status_code == 302
    assert not [le for le in catalog.list_lessons(db) if le.id == 3]
    csv = editor.get("/estadisticas/lecciones.csv").text
    assert "lección borrada" in csv


# ---- prompts ------------------------------------------------------------------------------------

def test_a_prompt_recorded_by_a_leader_leaves_the_waiting_list_and_can_go_back(editor, db,
                                                                               tmp_path):
    require_program("espeak-ng")
    assert "title:leccion-1" in editor.get("/avisos/pendientes").text
    note = speech_file(tmp_path / "titulo.ogg", "la primera lección")
    answer = fetch(editor, "/avisos/grabacion", {"name": "title:leccion-1", "language": "es",
                                                 "audio": (io.BytesIO(note.read_bytes()), "t.ogg")},
                   content_type="multipart/form-data")
    assert answer.status_code == 200 and answer.get_json()["ok"]
    assert db.execute("SELECT synthetic FROM prompts WHERE name = 'title:leccion-1'").fetchone() == (0,)
    assert "title:leccion-1" not in editor.get("/avisos/pendientes").text
    again = post(editor, "/avisos/regenerar", {"name": "title:leccion-1", "language": "es"})
    assert again.status_code == 302
    assert db.execute("SELECT synthetic FROM prompts WHERE name = 'title:leccion-1'").fetchone() == (1,)


def test_an_unknown_prompt_is_refused(editor):
    answer = post(editor, "/avisos/regenerar", {"name": "nada", "language": "es"})
    assert "No existe el aviso" in editor.get(answer.headers["Location"]).text


# ---- menus --------------------------------------------------------------------------------------

def test_the_menu_page_shows_what_a_caller_hears_with_each_prompt_playable(editor, db):
    page = editor.get("/menus/").text
    assert "Nivel 1: Menú principal" in page and "«Para Lección 1, marque 1»" in page
    title = db.execute("SELECT media FROM prompts WHERE name = 'title:leccion-1'").fetchone()[0]
    assert f"/lecciones/audio/{title}.kiosk.wav" in page
    assert editor.get(f"/lecciones/audio/{title}.kiosk.wav").status_code == 200


def test_sub_menus_moves_reorder_rename_and_delete(editor, db):
    made = post(editor, "/menus/nuevo", {"parent": "main", "title": "El agua"})
    assert made.status_code == 302
    assert post(editor, "/menus/mover", {"lesson": "2", "to": "el-agua"}).status_code == 302
    assert catalog.get_lesson(db, 2).menu == "el-agua"
    assert post(editor, "/menus/intercambiar", {"menu": "main", "a": "1", "b": "3"}).status_code \
        == 302
    assert (catalog.get_lesson(db, 1).key, catalog.get_lesson(db, 3).key) == ("3", "1")
    assert post(editor, "/menus/renombrar", {"menu": "el-agua", "title": "Agua limpia"}) \
        .status_code == 302
    assert menus.find(menus.tree(db), "el-agua").title == "Agua limpia"
    refused = post(editor, "/menus/borrar", {"menu": "el-agua"})
    assert "no está vacío" in editor.get(refused.headers["Location"]).text
    menus.move_lesson(db, 2, "main")
    assert post(editor, "/menus/borrar", {"menu": "el-agua"}).status_code == 302
    assert "el-agua" not in {lv.slug for lv in menus.levels(menus.tree(db))}


def test_menus_stop_at_four_levels(editor, db):
    parent = "main"
    for level in range(2, 5):
        post(editor, "/menus/nuevo", {"parent": parent, "title": f"nivel {level}"})
        parent = f"nivel-{level}"
    answer = fetch(editor, "/menus/nuevo", {"parent": parent, "title": "nivel 5"})
    assert answer.status_code == 422 and "4 niveles" in answer.get_json()["message"]


# ---- messages -----------------------------------------------------------------------------------

def _message(db, settings, tmp_path) -> str:
    require_program("espeak-ng")
    settings.messages_dir.mkdir(parents=True, exist_ok=True)
    speech_file(settings.messages_dir / "m1.wav", "Hola, quiero saber más del mercurio.",
                ["-ar", "8000"])
    with store.write(db):
        db["messages"].insert({"id": "m1", "listener": "ab" * 16, "channel": "phone",
                               "device": "line-1", "language": "es", "path": "m1.wav",
                               "duration_ms": 2500, "created_at": store.now(), "heard": 0})
    return "m1"


def test_an_editor_hears_a_message_and_each_listen_is_logged(app, editor, db, settings, tmp_path):
    mid = _message(db, settings, tmp_path)
    page = editor.get("/mensajes/").text
    assert "oyente abababab" in page and "sin escuchar" in page and "987" not in page
    assert client_as(app, "vero").get(f"/mensajes/{mid}/audio").status_code == 403
    heard = editor.get(f"/mensajes/{mid}/audio")
    assert heard.status_code == 200 and heard.data[:4] == b"RIFF"
    editor.get(f"/mensajes/{mid}/audio", headers={"Range": "bytes=4000-"})  # a seek, not a listen
    assert db.execute("SELECT user FROM message_listens WHERE message_id = ?", [mid]).fetchall() \
        == [("eva",)]
    assert "eva" in editor.get(f"/mensajes/{mid}").text


def test_a_message_is_noted_tagged_and_published_only_with_consent(editor, db, settings, tmp_path):
    mid = _message(db, settings, tmp_path)
    saved = post(editor, f"/mensajes/{mid}", {"note": "Llamar a su grupo", "tags": "Mercurio, salud",
                                              "urgent": "1"})
    assert saved.status_code == 302
    row = db.execute("SELECT note, tags, urgent, done FROM messages WHERE id = ?", [mid]).fetchone()
    assert row == ("Llamar a su grupo", json.dumps(["mercurio", "salud"]), 1, 0)
    assert "#mercurio" in editor.get("/mensajes/").text
    refused = post(editor, f"/mensajes/{mid}/publicar", {"title": "Testimonio de Juana"})
    assert "permiso" in editor.get(refused.headers["Location"]).text
    post(editor, f"/mensajes/{mid}", {"consent": "1", "tags": "mercurio"})
    published = post(editor, f"/mensajes/{mid}/publicar", {"title": "Testimonio de Juana",
                                                           "speaker": "Juana", "menu": "main"})
    assert published.status_code == 302
    lesson = catalog.get_lesson(db, "testimonio-de-juana")
    assert lesson.published and lesson.recordings["es"].speaker == "Juana"
    assert "Por atender" in editor.get("/mensajes/").text
    assert "Testimonio de Juana" not in editor.get("/mensajes/").text  # done: out of the inbox


def test_an_unknown_message_is_a_404(editor):
    assert editor.get("/mensajes/nada").status_code == 404
    assert editor.get("/mensajes/nada/audio").status_code == 404


# ---- statistics ---------------------------------------------------------------------------------

def _listen(db, lesson_id: int, when: str = "2026-11-20T15:00:00Z", channel: str = "phone",
            listener: str = "cd" * 16, furthest: int = 60_000, language: str = "qu") -> None:
    events.record_listen(db, events.ListenEvent(
        events.new_id(), channel, "line-1", listener, lesson_id, language, "voice", when,
        furthest / 1000, furthest, 60_000))


def test_the_dashboard_counts_listens_and_exports_csv_without_any_listener_id(app, db):
    _listen(db, 1)
    _listen(db, 1, "2026-11-21T02:00:00Z", channel="kiosk", listener="ef" * 16, furthest=20_000)
    viewer = client_as(app, "vero")
    page = viewer.get("/estadisticas/").text
    assert "<svg" in page and "Lección 1" in page
    assert "cdcdcd" not in page and "efefef" not in page
    csv = viewer.get("/estadisticas/lecciones.csv")
    assert csv.mimetype == "text/csv" and "attachment" in csv.headers["Content-Disposition"]
    lines = csv.text.lstrip("\ufeff").splitlines()
    assert lines[0].startswith("lección,escuchas,oyentes") and lines[1].startswith("Lección 1,2,2")
    by_day = viewer.get("/estadisticas/por-dia-idioma.csv").text
    assert "2026-11-20,quechua,2" in by_day  # 21 Nov 02:00 UTC is the 20th in Peru
    hours = viewer.get("/estadisticas/por-hora.csv").text
    assert "10:00,1,1" in hours and "21:00,1,0" in hours
    for name in ("por-dia-canal", "recorrido", "por-eleccion", "equipos"):
        exported = viewer.get(f"/estadisticas/{name}.csv")
        assert exported.status_code == 200 and "cdcdcd" not in exported.text
    assert viewer.get("/estadisticas/nada.csv").status_code == 404


def test_the_date_range_narrows_every_table_and_a_bad_date_is_explained(app, db):
    _listen(db, 1, "2026-10-01T15:00:00Z")
    _listen(db, 2, "2026-11-20T15:00:00Z")
    viewer = client_as(app, "vero")
    csv = viewer.get("/estadisticas/lecciones.csv?desde=2026-11-01&hasta=2026-11-30").text
    assert "Lección 1,0," in csv and "Lección 2,1," in csv
    bad = viewer.get("/estadisticas/?desde=nunca")
    assert bad.status_code == 200 and "Fecha no válida" in bad.text


# ---- staff --------------------------------------------------------------------------------------

def test_an_admin_manages_users_but_the_last_admin_stays(app, db):
    admin = client_as(app, "ana")
    assert post(admin, "/usuarios/", {"name": "lucia", "role": "editor",
                                      "password": "otra-clave-larga"}).status_code == 302
    assert login(app.test_client(), "lucia", "otra-clave-larga").status_code == 302
    short = post(admin, "/usuarios/", {"name": "maria", "role": "editor", "password": "corta"})
    assert "al menos 8" in admin.get(short.headers["Location"]).text
    post(admin, "/usuarios/lucia", {"action": "role", "role": "viewer"})
    lucia = app.test_client()
    login(lucia, "lucia", "otra-clave-larga")
    assert lucia.get("/lecciones/").status_code == 403
    demote = post(admin, "/usuarios/ana", {"action": "role", "role": "editor"})
    assert "al menos un administrador" in admin.get(demote.headers["Location"]).text
    itself = post(admin, "/usuarios/ana", {"action": "remove"})
    assert "su propio usuario" in admin.get(itself.headers["Location"]).text
    post(admin, "/usuarios/lucia", {"action": "password", "password": "clave-nueva-larga"})
    assert login(app.test_client(), "lucia", "clave-nueva-larga").status_code == 302
    assert post(admin, "/usuarios/lucia", {"action": "remove"}).status_code == 302
    assert login(app.test_client(), "lucia", "clave-nueva-larga").status_code == 401


# ---- spoken keywords ----------------------------------------------------------------------------

def test_checking_keywords_without_a_speech_model_says_voice_is_off(editor):
    answer = post(editor, "/lecciones/1/palabras")
    assert "La voz no está activada" in editor.get(answer.headers["Location"]).text


@pytest.mark.slow
def test_checking_keywords_with_the_real_recogniser_reports_each_word(settings, db):
    require(SPHINX_MODEL.exists(), f"PocketSphinx Spanish model missing at {SPHINX_MODEL}")
    require_program("espeak-ng")
    catalog.update_lesson(db, 1, keywords="mercurio")
    with_voice = dataclasses.replace(settings, speech=dataclasses.replace(
        settings.speech, engine="pocketsphinx", model=str(SPHINX_MODEL)))
    app = create_app(with_voice, {"TESTING": True},
                     synthesizer=FakeSynthesizer(settings.cache_dir))
    page = post(client_as(app, "eva"), "/lecciones/1/palabras")
    assert page.status_code == 200 and "mercurio" in page.text
    assert "bien" in page.text or "se confunde con" in page.text

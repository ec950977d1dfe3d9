"""Catalogue rules a leader can break, and the view the menu engine walks (real SQLite files)."""

from __future__ import annotations

import pytest

from audio_lessons import catalog, store
from audio_lessons.catalog import CatalogView, Lesson, Menu
from audio_lessons.errors import CatalogError


@pytest.fixture
def db(tmp_path):
    db = store.connect(tmp_path / "pallay.db")
    yield db
    db.conn.close()


def add_media(db, hash_: str, duration_ms: int = 120_000) -> str:
    """A media row as media.register writes it (the files themselves are not needed here)."""
    with store.write(db):
        db["media"].insert({"hash": hash_, "duration_ms": duration_ms, "original_name": "a.ogg",
                            "original_ext": "ogg", "source_format": "ogg", "loudness_lufs": -18.0,
                            "created_at": store.now()})
    return hash_


def spanish(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert message and message[0].isupper(), message
    return message


def test_add_lesson_assigns_the_lowest_free_key_and_reads_back(db):
    first = catalog.add_lesson(db, slug="polvo", title="El polvo y la mascarilla", topic="salud",
                               keywords=["  Polvo ", "MASCARILLA", "polvo", "respiración"])
    second = catalog.add_lesson(db, slug="sol", title="El sol", key=3)
    third = catalog.add_lesson(db, slug="carga", title="La carga")
    lessons = {le.slug: le for le in catalog.list_lessons(db)}
    assert lessons["polvo"].key == "1" and lessons["sol"].key == "3" and lessons["carga"].key == "2"
    assert lessons["polvo"].keywords == ("polvo", "mascarilla", "respiración")
    assert catalog.get_lesson(db, "sol").id == second
    assert catalog.get_lesson(db, first).title == "El polvo y la mascarilla"
    assert catalog.get_lesson(db, str(third)).slug == "carga"
    assert [le.slug for le in catalog.list_lessons(db)] == ["polvo", "sol", "carga"]


@pytest.mark.parametrize("kwargs, words", [
    ({"slug": "Polvo Fino", "title": "x"}, "identificador"),
    ({"slug": "polvo", "title": "   "}, "título"),
    ({"slug": "polvo", "title": "x", "menu": "nada"}, "No existe el menú"),
    ({"slug": "polvo", "title": "x", "key": "0"}, "del 1 al 9"),
    ({"slug": "polvo", "title": "x", "key": "12"}, "del 1 al 9"),
    ({"slug": "polvo", "title": "x", "key": "8"}, "reservadas"),
    ({"slug": "polvo", "title": "x", "key": 9}, "reservadas"),
])
def test_add_lesson_rejects_bad_input_in_spanish(db, kwargs, words):
    with pytest.raises(CatalogError) as exc:
        catalog.add_lesson(db, **kwargs)
    assert words in spanish(exc)
    assert catalog.list_lessons(db) == []


def test_keys_are_unique_across_lessons_and_submenus(db):
    catalog.add_lesson(db, slug="polvo", title="Polvo", key=1)
    catalog.add_menu(db, "salud", "Salud", key=2)
    with pytest.raises(CatalogError) as exc:
        catalog.add_lesson(db, slug="sol", title="Sol", key="2")
    assert "La tecla 2 ya está en uso" in spanish(exc)
    with pytest.raises(CatalogError) as exc:
        catalog.add_menu(db, "mercurio", "Mercurio", key=1)
    assert "ya está en uso" in spanish(exc)
    # the same key is free in another menu
    catalog.add_lesson(db, slug="sol", title="Sol", menu="salud", key=1)


def test_a_menu_holds_at_most_nine_items_and_the_root_seven(db):
    for n in range(1, 8):
        catalog.add_lesson(db, slug=f"l{n}", title=f"Lección {n}")
    with pytest.raises(CatalogError) as exc:
        catalog.add_lesson(db, slug="l8", title="Una más")
    assert "ya tiene 7 opciones" in spanish(exc)
    with pytest.raises(CatalogError):
        catalog.add_menu(db, "otro", "Otro")
    catalog.delete_lesson(db, catalog.get_lesson(db, "l7").id)
    catalog.add_menu(db, "otro", "Otro")
    for n in range(1, 10):
        catalog.add_lesson(db, slug=f"o{n}", title=f"Otra {n}", menu="otro")
    with pytest.raises(CatalogError) as exc:
        catalog.add_lesson(db, slug="o10", title="Otra 10", menu="otro")
    assert "ya tiene 9 opciones" in spanish(exc)
    assert sorted(le.key for le in catalog.list_lessons(db) if le.menu == "otro") == list("123456789")


def test_menus_are_at_most_four_levels_deep(db):
    catalog.add_menu(db, "nivel-2", "Dos")
    catalog.add_menu(db, "nivel-3", "Tres", parent="nivel-2")
    catalog.add_menu(db, "nivel-4", "Cuatro", parent="nivel-3")
    assert catalog.menu_depth(db, "nivel-4") == 4
    with pytest.raises(CatalogError) as exc:
        catalog.add_menu(db, "nivel-5", "Cinco", parent="nivel-4")
    assert "más de 4 niveles" in spanish(exc)
    catalog.add_lesson(db, slug="honda", title="Lección honda", menu="nivel-4")  # items are fine
    with pytest.raises(CatalogError) as exc:
        catalog.add_menu(db, "nivel-2", "Otra vez")
    assert "Ya existe un menú" in spanish(exc)


def test_keywords_belong_to_one_lesson(db):
    catalog.add_lesson(db, slug="polvo", title="Polvo", keywords=["polvo", "mascarilla"])
    with pytest.raises(CatalogError) as exc:
        catalog.add_lesson(db, slug="tos", title="Tos", keywords=["tos", "Mascarilla "])
    assert "«mascarilla» ya lleva a la lección «Polvo»" in spanish(exc)
    # accents are kept: "sól" is another word than "sol"
    catalog.add_lesson(db, slug="sol", title="Sol", keywords="sol, sól")
    assert catalog.get_lesson(db, "sol").keywords == ("sol", "sól")


def test_update_lesson_checks_the_same_rules(db):
    polvo = catalog.add_lesson(db, slug="polvo", title="Polvo", key=1, keywords=["polvo"])
    sol = catalog.add_lesson(db, slug="sol", title="Sol", key=2)
    catalog.add_menu(db, "salud", "Salud", key=3)
    with pytest.raises(CatalogError, match="ya está en uso"):
        catalog.update_lesson(db, sol, key=1)
    with pytest.raises(CatalogError, match="Ya existe una lección"):
        catalog.update_lesson(db, sol, slug="polvo")
    with pytest.raises(CatalogError, match="ya lleva a la lección"):
        catalog.update_lesson(db, sol, keywords=["polvo"])
    with pytest.raises(CatalogError, match="No se puede cambiar"):
        catalog.update_lesson(db, sol, colour="red")
    with pytest.raises(CatalogError, match="No existe la lección"):
        catalog.update_lesson(db, 999, title="x")
    moved = catalog.update_lesson(db, sol, menu="salud", title="El sol fuerte ")
    assert (moved.menu, moved.key, moved.title) == ("salud", "2", "El sol fuerte")
    back = catalog.update_lesson(db, polvo, published=False, key="4")
    assert back.key == "4" and not back.published
    assert catalog.get_lesson(db, polvo).keywords == ("polvo",)


def test_recordings_and_prompts_need_known_language_and_media(db):
    lesson = catalog.add_lesson(db, slug="polvo", title="Polvo")
    add_media(db, "a" * 16, 95_000)
    with pytest.raises(CatalogError, match="idioma «ay» no está configurado"):
        catalog.set_recording(db, lesson, "ay", "a" * 16)
    with pytest.raises(CatalogError, match="audio no está registrado"):
        catalog.set_recording(db, lesson, "qu", "b" * 16)
    with pytest.raises(CatalogError, match="No existe la lección"):
        catalog.set_recording(db, 42, "qu", "a" * 16)
    with pytest.raises(CatalogError, match="audio no está registrado"):
        catalog.set_prompt(db, "welcome", "es", "c" * 16)
    with pytest.raises(CatalogError, match="nombre de aviso"):
        catalog.set_prompt(db, "", "es", "a" * 16)
    catalog.set_recording(db, lesson, "qu", "a" * 16, speaker="Rosa")
    add_media(db, "d" * 16, 80_000)
    catalog.set_recording(db, lesson, "qu", "d" * 16, speaker="Juana")  # replaces Rosa's
    recording = catalog.get_lesson(db, lesson).recordings["qu"]
    assert (recording.media, recording.duration_ms, recording.speaker) == ("d" * 16, 80_000, "Juana")
    assert db.execute("SELECT count(*) FROM recordings").fetchone()[0] == 1


def test_view_holds_published_lessons_with_recordings_menus_and_prompts(db):
    add_media(db, "m1")
    add_media(db, "m2")
    catalog.add_menu(db, "salud", "Salud", key=4)
    heard = catalog.add_lesson(db, slug="polvo", title="Polvo", key=1, position=2)
    catalog.add_lesson(db, slug="mudo", title="Sin grabación", key=2)
    hidden = catalog.add_lesson(db, slug="borrador", title="Borrador", key=3, published=False)
    deep = catalog.add_lesson(db, slug="sol", title="Sol", menu="salud", key=1, position=1)
    catalog.set_recording(db, heard, "es", "m1")
    catalog.set_recording(db, hidden, "es", "m1")
    catalog.set_recording(db, deep, "qu", "m2", synthetic=True)
    catalog.set_prompt(db, "welcome", "qu", "m2", text="Allinllachu")
    view = catalog.view(db)
    assert isinstance(view, CatalogView)
    assert set(view.lessons) == {heard, deep}
    assert view.menus["salud"] == Menu("salud", "Salud", "main", "4")
    assert view.prompts == {("welcome", "qu"): "m2"}
    assert [(k, item.slug) for k, item in view.items("main")] == [
        ("1", "polvo"), ("4", "salud")]
    assert [le.slug for le in view.ordered_lessons()] == ["sol", "polvo"]
    sol: Lesson = view.lessons[deep]
    assert sol.recording("qu").synthetic and sol.recording("es", fallback="qu").language == "qu"


def test_delete_lesson_frees_its_key_and_keeps_history(db):
    add_media(db, "m1")
    lesson = catalog.add_lesson(db, slug="polvo", title="Polvo", key=1)
    catalog.set_recording(db, lesson, "es", "m1")
    with store.write(db):
        db["listen_events"].insert({"id": "e1", "lesson_id": lesson, "channel": "phone",
                                    "started_at": "2026-05-01T10:00:00Z", "quartile": 0})
        db["progress"].insert({"listener": "x", "lesson_id": lesson, "position_ms": 5})
    catalog.delete_lesson(db, lesson)
    with pytest.raises(CatalogError, match="No existe la lección"):
        catalog.get_lesson(db, lesson)
    assert db.execute("SELECT count(*) FROM recordings").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM progress").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM listen_events").fetchone()[0] == 1
    catalog.add_lesson(db, slug="nueva", title="Nueva", key=1)


def test_delete_menu_only_when_empty(db):
    catalog.add_menu(db, "salud", "Salud")
    catalog.add_lesson(db, slug="sol", title="Sol", menu="salud")
    with pytest.raises(CatalogError, match="no está vacío"):
        catalog.delete_menu(db, "salud")
    with pytest.raises(CatalogError, match="no se puede borrar"):
        catalog.delete_menu(db, "main")
    catalog.delete_lesson(db, catalog.get_lesson(db, "sol").id)
    catalog.delete_menu(db, "salud")
    assert "salud" not in catalog.view(db).menus


def test_slugify_makes_valid_slugs_from_spanish_titles(db):
    assert catalog.slugify("Cuídate del sol, compañera") == "cuidate-del-sol-companera"
    assert catalog.slugify("  ¿Mercurio?  ") == "mercurio"
    assert catalog.slugify("2024") == "leccion-2024" and catalog.slugify("¡¡!!") == "leccion"
    lesson = catalog.add_lesson(db, slug=catalog.slugify("Ñusta y el azogue"), title="x")
    assert catalog.get_lesson(db, "nusta-y-el-azogue").id == lesson
    with pytest.raises(CatalogError, match="identificador"):
        catalog.add_lesson(db, slug="2024", title="Un número no es un identificador")


def test_titles_keywords_and_speakers_fit_what_a_menu_can_say(db):
    from audio_lessons import labels

    longest = "a" * labels.MAX_TITLE_CHARS
    lesson = catalog.add_lesson(db, slug="largo", title=f"  {longest}\n", keywords=["agua"] * 9)
    assert catalog.get_lesson(db, lesson).title == longest  # one line, trimmed, duplicates merged
    for bad in ({"title": longest + "a"}, {"keywords": ["una palabra clave demasiado larga"]},
                {"keywords": ["uno dos tres cuatro"]}, {"keywords": [f"w{i}" for i in range(7)]},
                {"topic": "t" * (labels.MAX_TOPIC_CHARS + 1)}):
        with pytest.raises(CatalogError, match="máximo|demasiado larga"):
            catalog.add_lesson(db, slug="otra", **{"title": "otra", **bad})
        with pytest.raises(CatalogError, match="máximo|demasiado larga"):
            catalog.update_lesson(db, lesson, **bad)
    with pytest.raises(CatalogError, match="máximo es 60"):
        catalog.add_menu(db, "submenu", "s" * 61)
    media_hash = add_media(db, "ab" * 16)
    with pytest.raises(CatalogError, match="quien grabó"):
        catalog.set_recording(db, lesson, "es", media_hash, speaker="Rosa " * 20)
    catalog.set_recording(db, lesson, "es", media_hash, speaker=" Rosa\tQuispe ")
    assert catalog.get_lesson(db, lesson).recordings["es"].speaker == "Rosa Quispe"
    assert [le.slug for le in catalog.list_lessons(db)] == ["largo"]

"""Files in a language the embedder does not read are indexed and say so."""

from __future__ import annotations

from pathlib import Path

from engine.documents import language
from engine.documents.embedder import Embedder
from engine.documents.events import IndexDone
from engine.documents.library import DocumentLibrary
from engine.settings import Settings

ENGLISH = (
    "The lighthouse keeper on Cape Verity climbs the stairs every evening to light the lamp. "
    "It is a long climb, and the wind is strong at the top of the tower. From there the keeper "
    "can see the ferry that comes from the mainland, and the fishing boats that return before "
    "dark. The log book records the weather, the ships that pass, and any light seen at sea. "
)
FRENCH = (
    "Le gardien du phare du cap Vérité monte les escaliers chaque soir pour allumer la lampe. "
    "La montée est longue, et le vent est fort en haut de la tour. De là, le gardien voit le "
    "bac qui vient du continent, et les bateaux de pêche qui rentrent avant la nuit. Le "
    "registre note le temps, les navires qui passent et toute lumière aperçue en mer. "
)
GERMAN = (
    "Der Leuchtturmwärter am Kap Verity steigt jeden Abend die Treppe hinauf, um die Lampe "
    "anzuzünden. Der Aufstieg ist lang, und der Wind ist oben auf dem Turm stark. Von dort "
    "sieht der Wärter die Fähre, die vom Festland kommt, und die Fischerboote, die vor der "
    "Dunkelheit zurückkehren. Das Logbuch verzeichnet das Wetter und die Schiffe. "
)
RUSSIAN = (
    "Смотритель маяка на мысе Верити каждый вечер поднимается по лестнице, чтобы зажечь "
    "лампу. Подъём долгий, и ветер на вершине башни сильный. Оттуда смотритель видит паром, "
    "который идёт с материка, и рыбацкие лодки, возвращающиеся до темноты. "
)
CHINESE = "维里蒂角的灯塔看守人每天晚上爬上楼梯点亮灯。攀登很长，塔顶的风很大。" * 10


def test_the_language_of_a_text_is_guessed() -> None:
    assert language.guess(ENGLISH * 2) == "English"
    assert language.guess(FRENCH * 2) == "French"
    assert language.guess(GERMAN * 2) == "German"
    assert language.guess(RUSSIAN * 2) == "Cyrillic"
    assert language.guess(CHINESE) == "Chinese or Japanese"
    assert language.guess("Short note.") is None  # too little to tell
    assert language.guess("def f(x):\n    return g(x, y)\n" * 40) is None  # code: no language
    assert language.note_for(ENGLISH * 2) is None
    note = language.note_for(FRENCH * 2)
    assert note and note.startswith("seems to be in French")


def test_a_french_file_indexes_with_a_note_and_an_english_one_without(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "phare.txt").write_text(FRENCH * 2, encoding="utf-8")
    (docs / "lighthouse.txt").write_text(ENGLISH * 2, encoding="utf-8")
    lib = DocumentLibrary(tmp_path / "index", Settings.load(None), Embedder())
    lib.create("c", [str(docs)])
    (done,) = [e for e in lib.sync("c") if isinstance(e, IndexDone)]
    assert done.indexed == 2
    rows = {Path(r.path).name: r for r in lib.documents("c")}
    assert rows["phare.txt"].status == "indexed"
    assert rows["phare.txt"].reason and "seems to be in French" in rows["phare.txt"].reason
    assert not rows["lighthouse.txt"].reason
    # Its exact words are still found.
    assert "phare.txt" in lib.search("c", "gardien du phare").hits[0].path
    lib.close()

"""Which language a document seems to be in, to warn when the embedder does not read it.

The bundled embedder (all-MiniLM-L6-v2) was trained on English: a French or Russian file is
indexed, and its exact words are found (the word index does not care), but a question that
paraphrases it finds it poorly. Users should be told per file, not discover it. This is a
cheap guess from the script of the letters and from the commonest short words of a few
languages, good enough to say "this looks French"; it never refuses a file.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

SAMPLE_CHARS = 20_000
MIN_LETTERS = 200  # below this, too little text to tell
MIN_WORDS = 60

# The commonest short words, chosen to be rare in the other languages listed.
_FUNCTION_WORDS = {
    "English": "the of and to is that for with was this are from have which not be by it as",
    "French": "le la les des est une que pour dans qui sur pas par avec sont du au ce",
    "German": "der die das und ist nicht mit ein eine zu den von sich des auf auch wird",
    "Spanish": "el los las y que por una con para del se es lo como más pero sus",
    "Italian": "il di che la per non una sono della con gli del le si è anche",
    "Dutch": "het een van en dat niet zijn op met voor er maar ook wordt deze",
    "Portuguese": "o os que de não uma para com do da em um são pelo ao mais",
}
_WORD_SETS = {lang: frozenset(words.split()) for lang, words in _FUNCTION_WORDS.items()}
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
_SCRIPTS = {
    "CYRILLIC": "Cyrillic",
    "GREEK": "Greek",
    "ARABIC": "Arabic",
    "HEBREW": "Hebrew",
    "CJK": "Chinese or Japanese",
    "HIRAGANA": "Japanese",
    "KATAKANA": "Japanese",
    "HANGUL": "Korean",
    "DEVANAGARI": "Devanagari",
    "THAI": "Thai",
}


def guess(text: str) -> str | None:
    """The language (or script) the text seems to be in: "English", "French", "Cyrillic"…;
    None when there is too little text to tell or no language stands out."""
    sample = text[:SAMPLE_CHARS]
    letters = [c for c in sample if c.isalpha()]
    if len(letters) < MIN_LETTERS:
        return None
    scripts: Counter[str] = Counter()
    for c in letters:
        if ord(c) < 0x250:  # Latin, with its accented letters
            scripts["LATIN"] += 1
        else:
            scripts[unicodedata.name(c, "UNKNOWN").split()[0]] += 1
    script, count = scripts.most_common(1)[0]
    if script != "LATIN" and count > 0.3 * len(letters):
        return _SCRIPTS.get(script, script.title())
    # One-letter words (Spanish "y", Italian "e", code's x and y) say little: left out.
    words = [w.lower() for w in _WORD.findall(sample) if len(w) > 1]
    if len(words) < MIN_WORDS:
        return None
    shares = {lang: sum(w in s for w in words) / len(words) for lang, s in _WORD_SETS.items()}
    best = max(shares, key=lambda lang: shares[lang])
    return best if shares[best] >= 0.08 else None


def note_for(text: str, languages: tuple[str, ...] = ("English",)) -> str | None:
    """A note for the file's status when it seems to be in a language the embedder does not
    read, else None."""
    found = guess(text)
    if found is None or found in languages:
        return None
    return (
        f"seems to be in {found}: the document embedder reads English, so questions that "
        "paraphrase this file find it poorly (its exact words still match)"
    )

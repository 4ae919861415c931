"""Is each sentence of an answer backed by the passages the model was given?

Every answer sentence that makes a claim is compared with every sentence (and pair of adjacent
sentences) of the sources: by meaning (cosine similarity of the embedder's vectors) and by
words (how many of the sentence's content words, and whether all of its numbers, appear in
the source). The best source unit decides: "supported", "partial" (related, but part of the
sentence is not in it) or "unsupported". Citation markers [n] are checked too: a number that
names no source, or a source that does not back the sentence while another does, is flagged.

It runs on the embedder Hearth already has loaded, with no model download and no second
model. The thresholds are set on the dev split of bench/grounding/sentences.json (written by
someone who never saw this code) and reported on its test split: `bench/bench_grounding.py`.
It checks agreement with the sources, not truth: a sentence copied from a wrong passage is
"supported".
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

# Set on the dev split (bench/bench_grounding.py --split dev); see docs/compliance.md.
SUPPORTED_SIM = 0.80
SUPPORTED_WORDS = 0.60
PARTIAL_SIM = 0.70
PARTIAL_WORDS = 0.50

VERDICTS = ("supported", "partial", "unsupported")
# Models smaller than this on disk (about 0.5B parameters at 4 bits, like the bundled 135M
# one) answer from passages unreliably: their answers come with the evidence quoted beside.
SMALL_MODEL_BYTES = 500 * 1024 * 1024
_MIN_CONTENT_WORDS = 2  # fewer ("Sure.", "Yes, it does.") makes no claim to check

_SENTENCE_END = re.compile(
    r"(?<=[.!?])[\"'”)\]]*\s+(?=[\"'“(\[]?[A-Z0-9])|\n\s*\n|\n(?=\s*[-*•\d])"
)
_CITATION = re.compile(r"\[(\d{1,3})\]")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_'-]*|\d+(?:[.,]\d+)*")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_STOP_WORDS = (
    "a an and are as at be been but by can could do does did for from had has have how i if in "
    "into is it its me my of on or our should so than that the their them then there these they "
    "this to was we were what when where which who whom why will with would you your also any "
    "all not no yes just only very more most some such each other use used using uses"
)
_STOP = frozenset(_STOP_WORDS.split())


@dataclass(frozen=True)
class SentenceCheck:
    text: str
    start: int  # characters into the answer
    end: int
    verdict: str  # "supported", "partial", "unsupported", or "none" (no claim to check)
    similarity: float  # with the best source unit
    words: float  # share of the sentence's content words found in that source
    source: int | None  # n of the source that backs it best
    evidence: str | None  # the source's sentence(s) that back it best
    cited: tuple[int, ...] = ()
    citation_problem: str | None = None


@dataclass(frozen=True)
class Evidence:
    """A sentence quoted from a source because it answers the question best."""

    source: int
    text: str
    similarity: float


@dataclass(frozen=True)
class Grounding:
    sentences: list[SentenceCheck] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)  # best source sentences, quoted
    small_model: bool = False  # written by a model too small to trust (SMALL_MODEL_BYTES)

    @property
    def weak(self) -> bool:
        """Fewer than half of the answer's claims are backed."""
        c = self.counts()
        checked = sum(c.values())
        return checked == 0 or c["supported"] * 2 < checked

    @property
    def show_evidence(self) -> bool:
        """Put the quoted evidence beside the answer: it is not backed, or a small model
        wrote it."""
        return bool(self.evidence) and (self.weak or self.small_model)

    def evidence_note(self) -> str:
        if self.weak:
            return "quoted as written, not by the model; the answer is not backed by them"
        return "quoted as written; a small model wrote the answer, so check it against these"

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(VERDICTS, 0)
        for s in self.sentences:
            if s.verdict in out:
                out[s.verdict] += 1
        return out

    def summary(self) -> str:
        c = self.counts()
        checked = sum(c.values())
        if not checked:
            return "No sentence made a claim to check against the sources."
        text = f"{c['supported']} of {checked} sentences supported by the sources"
        extra = [f"{c[v]} {v}" for v in ("partial", "unsupported") if c[v]]
        flagged = sum(1 for s in self.sentences if s.citation_problem)
        if flagged:
            extra.append(f"{flagged} with a citation that does not fit")
        return text + (f" ({', '.join(extra)})" if extra else "") + "."

    def as_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary(),
            "counts": self.counts(),
            "weak": self.weak,
            "small_model": self.small_model,
            "show_evidence": self.show_evidence,
            "evidence_note": self.evidence_note(),
            "sentences": [asdict(s) for s in self.sentences],
            "evidence": [asdict(e) for e in self.evidence],
        }


Embed = Callable[[list[str]], np.ndarray]


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Spans of the sentences (and list items) of `text`, blanks trimmed."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _SENTENCE_END.finditer(text):
        spans.append((start, m.start()))
        start = m.end()
    spans.append((start, len(text)))
    out = []
    for a, b in spans:
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if b > a:
            out.append((a, b))
    return out


def check(
    answer: str, sources: Sequence[Any], embed: Embed, question: str | None = None
) -> Grounding:
    """Check every sentence of `answer` against `sources` (objects or dicts with `n` and
    `quote`). `embed` gives unit vectors, one row per text. With `question`, also pick the
    source sentences that answer it best (`evidence`), for when the answer is not backed."""
    quotes = [(_get(s, "n"), str(_get(s, "quote") or "")) for s in sources]
    units: list[tuple[int, str]] = []  # (source n, text)
    for n, quote in quotes:
        parts = [quote[a:b] for a, b in split_sentences(quote)]
        units += [(n, p) for p in parts]
        units += [(n, f"{p} {q}") for p, q in itertools.pairwise(parts)]
    spans = split_sentences(answer)
    claims = [
        (a, b)
        for a, b in spans
        if len(_content(_strip_citations(answer[a:b]))) >= _MIN_CONTENT_WORDS
    ]
    if not units:
        return Grounding(
            [
                _unchecked(answer, a, b, "unsupported" if (a, b) in claims else "none")
                for a, b in spans
            ]
        )
    texts = [_strip_citations(answer[a:b]) for a, b in claims]
    asked = [question] if question else []
    vectors = _embed(embed, [_clip(t) for t in texts + asked] + [_clip(u) for _, u in units])
    unit_vectors = vectors[len(texts) + len(asked) :]
    sims = vectors[: len(texts)] @ unit_vectors.T
    evidence = _evidence(vectors[len(texts)], unit_vectors, units, question) if question else []
    by_source = {n: q for n, q in quotes}
    source_words = {n: _content(q) for n, q in quotes}
    source_numbers = {n: set(_NUMBER.findall(q)) for n, q in quotes}
    checks: dict[tuple[int, int], SentenceCheck] = {}
    for i, (a, b) in enumerate(claims):
        sentence = texts[i]
        words = _content(sentence)
        numbers = set(_NUMBER.findall(sentence))
        scored = []
        for j, (n, _unit) in enumerate(units):
            cover = _coverage(words, source_words[n])
            ranked = _verdict_rank(float(sims[i, j]), cover, numbers <= source_numbers[n])
            scored.append((ranked, j, cover))
        (level, sim, _), best, cover = max(scored, key=lambda t: (t[0], t[2]))
        n, unit = units[best]
        verdict = VERDICTS[2 - level]
        cited = tuple(int(c) for c in _CITATION.findall(answer[a:b]))
        problem = _citation_problem(cited, by_source, n, verdict)
        checks[(a, b)] = SentenceCheck(
            answer[a:b], a, b, verdict, round(sim, 3), round(cover, 3), n, unit, cited, problem
        )
    return Grounding(
        [checks.get((a, b)) or _unchecked(answer, a, b, "none") for a, b in spans], evidence
    )


UNSUPPORTED_MARK = " *(not in the sources)*"


def mark(answer: str, checked: Grounding) -> str:
    """`answer` with each unsupported sentence struck through and marked (Markdown), for
    strict mode: the words stay readable, and nobody can take them for the sources'."""
    out = answer
    for s in sorted(checked.sentences, key=lambda c: -c.start):
        if s.verdict == "unsupported":
            out = f"{out[: s.start]}~~{out[s.start : s.end]}~~{UNSUPPORTED_MARK}{out[s.end :]}"
    return out


def _evidence(
    question_vector: np.ndarray,
    unit_vectors: np.ndarray,
    units: list[tuple[int, str]],
    question: str,
    k: int = 3,
) -> list[Evidence]:
    """The single source sentences closest to the question (meaning, then shared words),
    each at most once."""
    words = _content(question)
    scored = []
    for j, (n, unit) in enumerate(units):
        if len(_content(unit)) < _MIN_CONTENT_WORDS or (" " in unit and unit.count(". ") > 1):
            continue
        sim = float(unit_vectors[j] @ question_vector)
        scored.append((sim + 0.2 * _coverage(words, _content(unit)), sim, n, unit))
    scored.sort(key=lambda t: -t[0])
    out: list[Evidence] = []
    for _, sim, n, unit in scored:
        if any(unit in e.text or e.text in unit for e in out):
            continue
        out.append(Evidence(n, unit, round(sim, 3)))
        if len(out) == k:
            break
    return out


def _verdict_rank(sim: float, cover: float, numbers_ok: bool) -> tuple[int, float, float]:
    """2 supported, 1 partial, 0 unsupported; then similarity, for choosing the best unit."""
    if sim >= SUPPORTED_SIM and cover >= SUPPORTED_WORDS and numbers_ok:
        return (2, sim, cover)
    if (sim >= PARTIAL_SIM or cover >= PARTIAL_WORDS) and numbers_ok:
        return (1, sim, cover)
    return (0, sim, cover)


def _citation_problem(
    cited: tuple[int, ...],
    by_source: dict[Any, str],
    best: int,
    verdict: str,
) -> str | None:
    missing = [c for c in cited if c not in by_source]
    if missing:
        return f"[{missing[0]}] points to no source"
    if not cited or verdict == "unsupported" or best in cited:
        return None
    return f"cites [{', '.join(map(str, cited))}], but [{best}] is what backs it"


def _unchecked(answer: str, a: int, b: int, verdict: str) -> SentenceCheck:
    cited = tuple(int(c) for c in _CITATION.findall(answer[a:b]))
    return SentenceCheck(answer[a:b], a, b, verdict, 0.0, 0.0, None, None, cited, None)


def _embed(embed: Embed, texts: list[str]) -> np.ndarray:
    vectors = np.asarray(embed(texts), dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-9)


def _clip(text: str, words: int = 90) -> str:  # within the embedder's 256 word pieces
    parts = text.split()
    return " ".join(parts[:words])


def _strip_citations(text: str) -> str:
    return _CITATION.sub("", text).strip()


def _stem(word: str) -> str:
    w = word.lower().strip("'-")
    for suffix in ("ing", "ed", "es", "s"):
        if len(w) > len(suffix) + 3 and w.endswith(suffix):
            return w[: -len(suffix)]
    return w


def _content(text: str) -> set[str]:
    return {_stem(w) for w in _WORD.findall(text) if w.lower() not in _STOP}


def _coverage(words: set[str], source_words: set[str]) -> float:
    return len(words & source_words) / len(words) if words else 0.0


def _get(source: Any, name: str) -> Any:
    return source.get(name) if isinstance(source, dict) else getattr(source, name, None)

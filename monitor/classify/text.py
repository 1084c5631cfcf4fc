"""Pure text handling for the classifier: sentence splitting and chunk planning.

Articles are cut into chunks the encoder can read (headline and lead first): sentences are packed in
order into chunks of at most ``max_tokens`` tokens, and at most ``max_chunks`` chunks are kept. Each
chunk remembers the character span of every sentence in it, so that token states can be pooled per
sentence to find the evidence for a stance.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

_WS = re.compile(r"\s+")
_TAG = re.compile(r"<[^>]{0,200}>")
# A sentence ends at . ! ? (optionally followed by a closing quote or bracket) before whitespace and an
# upper-case letter, digit, quote or bracket.
_BOUNDARY = re.compile(r"([.!?])([\"'”’)\]]*)\s+(?=[\"'“‘(\[]?[A-Z0-9])")
_ABBREVIATIONS = frozenset(
    {
        "u.s",
        "u.k",
        "u.n",
        "u.s.a",
        "e.u",
        "mr",
        "mrs",
        "ms",
        "dr",
        "st",
        "jr",
        "sr",
        "gen",
        "lt",
        "col",
        "capt",
        "sen",
        "rep",
        "gov",
        "no",
        "vs",
        "e.g",
        "i.e",
        "inc",
        "corp",
        "ltd",
        "co",
        "jan",
        "feb",
        "mar",
        "apr",
        "aug",
        "sept",
        "sep",
        "oct",
        "nov",
        "dec",
        "a.m",
        "p.m",
        "prof",
        "adm",
        "cmdr",
        "est",
        "approx",
        "fig",
        "dept",
        "govt",
        "min",
        "rs",
    }
)


def clean(text: str) -> str:
    """Unicode-normalised text with tags stripped and whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text)
    text = _TAG.sub(" ", text)
    return _WS.sub(" ", text).strip()


def split_sentences(text: str) -> list[str]:
    """Split running text into sentences, keeping abbreviations such as "U.S." and "Mr." intact."""
    text = clean(text)
    if not text:
        return []
    sentences: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        if match.group(1) == ".":
            before = text[start : match.start(1)]
            word = before.rsplit(" ", 1)[-1].lower().lstrip("(\"'“‘")
            # "U.S." and other abbreviations, single initials ("J. Smith") and decimals do not end sentences.
            if word in _ABBREVIATIONS or len(word) == 1:
                continue
        end = match.end(2)
        sentence = text[start:end].strip()
        if sentence:
            sentences.append(sentence)
        start = match.end()
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


def item_sentences(title: str, summary: str) -> list[str]:
    """The headline as the first sentence, then the sentences of the summary or body."""
    head = clean(title)
    sentences = [head] if head else []
    sentences.extend(split_sentences(summary))
    return sentences


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of an article the encoder reads at once: its text and the span of each sentence."""

    text: str
    sentences: tuple[str, ...]
    spans: tuple[tuple[int, int], ...]

    def sentence_at(self, char: int) -> int:
        """Index of the sentence containing character ``char`` (-1 for the gaps between sentences)."""
        for index, (start, end) in enumerate(self.spans):
            if start <= char < end:
                return index
        return -1


def join_sentences(sentences: Sequence[str]) -> Chunk:
    """One chunk of ``sentences``; a headline without final punctuation is closed with a full stop."""
    parts: list[str] = []
    spans: list[tuple[int, int]] = []
    pos = 0
    for index, sentence in enumerate(sentences):
        if index:
            separator = " " if parts[-1][-1:] in ".!?:;\"'”’)" else ". "
            parts.append(separator)
            pos += len(separator)
        parts.append(sentence)
        spans.append((pos, pos + len(sentence)))
        pos += len(sentence)
    return Chunk("".join(parts), tuple(sentences), tuple(spans))


def plan_chunks(
    sentences: Sequence[str], count_tokens: Callable[[str], int], *, max_tokens: int, max_chunks: int
) -> list[Chunk]:
    """Pack ``sentences`` in order into at most ``max_chunks`` chunks of at most ``max_tokens`` tokens.

    A sentence longer than the budget gets a chunk of its own (the encoder truncates it). The separator
    between sentences is counted as one token.
    """
    if not sentences:
        return []
    chunks: list[Chunk] = []
    current: list[str] = []
    used = 0
    for sentence in sentences:
        n = count_tokens(sentence) + (1 if current else 0)
        if current and used + n > max_tokens:
            chunks.append(join_sentences(current))
            if len(chunks) == max_chunks:
                return chunks
            current, used = [], 0
            n -= 1
        current.append(sentence)
        used += n
    chunks.append(join_sentences(current))
    return chunks[:max_chunks]

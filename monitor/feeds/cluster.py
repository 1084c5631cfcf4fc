"""Near-duplicate story clustering: syndicated copies and lightly edited headlines share a ``story_id``.

Two signals, both cheap:

* **Body**: the first words of the summary, as 3-word shingles, summarised by a 64-value MinHash. Wire copy
  reprinted by several outlets keeps its lead paragraph while each outlet writes its own headline; the
  MinHash estimates how much of the shorter lead is contained in the other (containment >= 0.5).
* **Title**: the set of content words of the headline (stop words and the words every India-US headline
  shares, such as "India", "US", "Trump", dropped; plurals folded). Light edits of a headline keep almost
  all of them (Jaccard >= 0.7 with at least four words).

Candidates come from a locality-sensitive index (16 bands of 4 MinHash values) and an inverted index of
title words, so assigning is fast whatever the number of recent stories. Members older than ``window``
are forgotten. A new article joins the story of its best match, else founds a story whose id is its own
``article_id``. :class:`StoryIndex` is thread-safe; :class:`StoryMember` rows are what the poller stores
in SQLite so that a restarted poller keeps assigning the same ids.
"""

from __future__ import annotations

import hashlib
import re
import threading
import unicodedata
from array import array
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

NUM_HASHES = 64
BANDS = 16
ROWS = NUM_HASHES // BANDS
SHINGLE = 3
LEAD_TOKENS = 60
MIN_SHINGLES = 8
BODY_CONTAINMENT = 0.5
TITLE_JACCARD = 0.7
MIN_TITLE_TOKENS = 4

_MERSENNE = (1 << 61) - 1
_MASK = (1 << 64) - 1


def _coefficients() -> list[tuple[int, int]]:
    # Fixed, reproducible permutation parameters: the signatures are stored and must mean the same later.
    out = []
    for i in range(NUM_HASHES):
        digest = hashlib.blake2b(f"minhash-{i}".encode(), digest_size=16).digest()
        a = int.from_bytes(digest[:8], "little") % (_MERSENNE - 1) + 1
        b = int.from_bytes(digest[8:], "little") % _MERSENNE
        out.append((a, b))
    return out


_COEFFS = _coefficients()

# Stop words, and the words nearly every India-US headline shares (they say nothing about which story).
_STOP_WORDS = """
a an the and or but of in on at to for from by with as is are was were be been being it its this that these
those after before over under into about amid against between during says said say will would can could may
might should has have had not no new more most than up down out off per via vs who what when where why how
which all any some his her their our your we they he she you i us s
india indian indians u united states america american americans washington delhi modi trump biden
report reports update updates live latest news
"""
_STOP = frozenset(_STOP_WORDS.split())
_WORD = re.compile(r"\w+")
_US = re.compile(r"\bu\.\s?s\.(?:a\.)?", re.IGNORECASE)


def tokens(text: str) -> list[str]:
    """Lower-case word tokens, accents kept, ``U.S.`` folded to ``us``."""
    text = unicodedata.normalize("NFKC", _US.sub(" us ", text)).casefold()
    return _WORD.findall(text)


def _fold(token: str) -> str:
    if len(token) > 3 and token.endswith("s") and not token.endswith("ss"):
        return token[:-1]
    return token


def title_terms(title: str) -> frozenset[str]:
    """The content words of a headline, as used for title matching."""
    return frozenset(_fold(t) for t in tokens(title) if t not in _STOP and len(t) > 1)


def _hash64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def shingles(text: str) -> set[str]:
    """3-word shingles of the first words of ``text``."""
    words = tokens(text)[:LEAD_TOKENS]
    return {" ".join(words[i : i + SHINGLE]) for i in range(len(words) - SHINGLE + 1)}


def minhash(items: set[str]) -> array[int]:
    """The MinHash signature (64 values) of a set of strings."""
    hashes = [_hash64(s) for s in items]
    sig = array("Q")
    for a, b in _COEFFS:
        sig.append(min(((a * h + b) % _MERSENNE) & _MASK for h in hashes))
    return sig


def _jaccard_estimate(x: array[int], y: array[int]) -> float:
    return sum(1 for i in range(NUM_HASHES) if x[i] == y[i]) / NUM_HASHES


def _containment(x: array[int], nx: int, y: array[int], ny: int) -> float:
    j = _jaccard_estimate(x, y)
    if j <= 0.0:
        return 0.0
    intersection = j * (nx + ny) / (1.0 + j)
    return min(1.0, intersection / min(nx, ny))


@dataclass(frozen=True, slots=True)
class StoryMember:
    """One article's place in the index: its story and what it is compared by (what the store keeps)."""

    article_id: str
    story_id: str
    at: datetime
    title_terms: frozenset[str]
    signature: bytes | None
    """The body MinHash as bytes (64 little-endian uint64), or None for a lead too short to compare."""
    shingle_count: int

    def sig(self) -> array[int] | None:
        if self.signature is None:
            return None
        out = array("Q")
        out.frombytes(self.signature)
        return out


class StoryIndex:
    """Recent articles, indexed to find the story a new article belongs to."""

    def __init__(self, *, window: timedelta = timedelta(hours=72), max_members: int = 50_000) -> None:
        self._window = window
        self._max = max_members
        self._lock = threading.Lock()
        self._members: dict[str, StoryMember] = {}
        self._sigs: dict[str, array[int]] = {}
        self._order: deque[tuple[datetime, str]] = deque()
        self._bands: dict[tuple[int, bytes], set[str]] = {}
        self._terms: dict[str, set[str]] = {}

    def __len__(self) -> int:
        return len(self._members)

    def get(self, article_id: str) -> StoryMember | None:
        with self._lock:
            return self._members.get(article_id)

    @staticmethod
    def _band_keys(sig: array[int]) -> list[tuple[int, bytes]]:
        return [(b, sig[b * ROWS : (b + 1) * ROWS].tobytes()) for b in range(BANDS)]

    def _insert(self, member: StoryMember) -> None:
        self._members[member.article_id] = member
        self._order.append((member.at, member.article_id))
        sig = member.sig()
        if sig is not None:
            self._sigs[member.article_id] = sig
            for key in self._band_keys(sig):
                self._bands.setdefault(key, set()).add(member.article_id)
        for term in member.title_terms:
            self._terms.setdefault(term, set()).add(member.article_id)

    def _remove(self, article_id: str) -> None:
        member = self._members.pop(article_id, None)
        if member is None:
            return
        sig = self._sigs.pop(article_id, None)
        if sig is not None:
            for key in self._band_keys(sig):
                bucket = self._bands.get(key)
                if bucket is not None:
                    bucket.discard(article_id)
                    if not bucket:
                        del self._bands[key]
        for term in member.title_terms:
            posting = self._terms.get(term)
            if posting is not None:
                posting.discard(article_id)
                if not posting:
                    del self._terms[term]

    def _expire(self, now: datetime) -> None:
        horizon = now - self._window
        while self._order and (self._order[0][0] < horizon or len(self._members) > self._max):
            _, article_id = self._order.popleft()
            self._remove(article_id)

    def add(self, member: StoryMember) -> None:
        """Put back a member read from the store (e.g. after a restart)."""
        with self._lock:
            if member.article_id not in self._members:
                self._insert(member)

    def _best_match(self, terms: frozenset[str], sig: array[int] | None, count: int) -> StoryMember | None:
        candidates: set[str] = set()
        if sig is not None:
            for key in self._band_keys(sig):
                candidates |= self._bands.get(key, set())
        if len(terms) >= MIN_TITLE_TOKENS:
            # A match shares all but 30% of these words, so it is in one of the rarest 30% + 1 postings.
            postings = sorted((self._terms.get(t, set()) for t in terms), key=len)
            for posting in postings[: int((1 - TITLE_JACCARD) * len(terms)) + 1]:
                candidates |= posting
        best: tuple[float, datetime, str] | None = None
        found: StoryMember | None = None
        for cid in candidates:
            other = self._members[cid]
            score = 0.0
            other_sig = self._sigs.get(cid)
            if sig is not None and other_sig is not None:
                c = _containment(sig, count, other_sig, other.shingle_count)
                if c >= BODY_CONTAINMENT:
                    score = max(score, c)
            if len(terms) >= MIN_TITLE_TOKENS and len(other.title_terms) >= MIN_TITLE_TOKENS:
                j = len(terms & other.title_terms) / len(terms | other.title_terms)
                if j >= TITLE_JACCARD:
                    score = max(score, j)
            # Ties go to the oldest member, so the choice does not depend on set order.
            rank = (-score, other.at, other.article_id)
            if score > 0 and (best is None or rank < best):
                best, found = rank, other
        return found

    def assign(self, article_id: str, title: str, summary: str, at: datetime) -> StoryMember:
        """The story of a new article (joining the best-matching recent story, or founding one)."""
        terms = title_terms(title)
        body = shingles(summary)
        sig = minhash(body) if len(body) >= MIN_SHINGLES else None
        with self._lock:
            known = self._members.get(article_id)
            if known is not None:
                return known
            self._expire(at)
            match = self._best_match(terms, sig, len(body))
            member = StoryMember(
                article_id=article_id,
                story_id=match.story_id if match else article_id,
                at=at,
                title_terms=terms,
                signature=sig.tobytes() if sig is not None else None,
                shingle_count=len(body),
            )
            self._insert(member)
            return member

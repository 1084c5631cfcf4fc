"""Near-duplicate story clustering: syndicated copies and lightly edited headlines share a ``story_id``.

Two signals, both cheap:

* **Body**: the first words of the summary as 3-word shingles, summarised by a bottom-k MinHash sketch (the
  32 smallest 64-bit shingle hashes). Wire copy reprinted by several outlets keeps its lead paragraph while
  each outlet writes its own headline; the sketches estimate how much of the shorter lead is contained in
  the other (containment >= 0.5).
* **Title**: the set of content words of the headline (stop words and the words every India-US headline
  shares, such as "India", "US", "Trump", dropped; plurals folded). Light edits of a headline keep almost
  all of them (Jaccard >= 0.7 with at least four words).

Candidates come from inverted indexes (sketch value -> articles, title word -> articles): only articles
that share at least two sketch values, or enough title words, are compared; of a value or word shared by very
many articles (boilerplate such as "click here to read more"), only the newest ones are considered. Members
older than ``window`` are forgotten. A new article joins the story of its best match, else founds a story
whose id is its own ``article_id``. :class:`StoryIndex` is thread-safe; :class:`StoryMember` rows are what
the poller stores in SQLite so that a restarted poller keeps assigning the same ids.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import threading
import unicodedata
from array import array
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

SKETCH_SIZE = 32
SHINGLE = 3
LEAD_TOKENS = 60
MIN_SHINGLES = 8
BODY_CONTAINMENT = 0.5
TITLE_JACCARD = 0.7
MIN_TITLE_TOKENS = 4
MIN_SHARED_VALUES = 2
POSTING_SAMPLE = 40
"""Bounded work per article: of the articles sharing one sketch value or one title word, only the newest this
many are candidates. Boilerplate ("click here to read more") then costs little, and a story reprinted
everywhere is still found through its most recent copies."""

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


def sketch(items: set[str]) -> tuple[int, ...]:
    """The bottom-k MinHash sketch of a set of strings: its ``SKETCH_SIZE`` smallest 64-bit hashes, sorted."""
    return tuple(sorted({_hash64(s) for s in items})[:SKETCH_SIZE])


def jaccard_estimate(x: tuple[int, ...], y: tuple[int, ...]) -> float:
    """Estimated Jaccard similarity of two sets from their bottom-k sketches."""
    if not x or not y:
        return 0.0
    union = sorted(set(x) | set(y))[:SKETCH_SIZE]
    both = set(x) & set(y)
    return sum(1 for v in union if v in both) / len(union)


def containment(x: tuple[int, ...], nx: int, y: tuple[int, ...], ny: int) -> float:
    """Estimated share of the smaller set (``nx`` or ``ny`` elements) found in the other."""
    j = jaccard_estimate(x, y)
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
    """The body sketch as bytes (little-endian uint64s), or None for a lead too short to compare."""
    shingle_count: int

    def sketch(self) -> tuple[int, ...]:
        if self.signature is None:
            return ()
        values = array("Q")
        values.frombytes(self.signature)
        return tuple(values)


def _newest(posting: dict[str, None]) -> Iterable[str]:
    if len(posting) <= POSTING_SAMPLE:
        return posting.keys()
    return itertools.islice(reversed(posting), POSTING_SAMPLE)


def _to_bytes(values: tuple[int, ...]) -> bytes:
    return array("Q", values).tobytes()


class StoryIndex:
    """Recent articles, indexed to find the story a new article belongs to."""

    def __init__(self, *, window: timedelta = timedelta(hours=72), max_members: int = 50_000) -> None:
        self._window = window
        self._max = max_members
        self._lock = threading.Lock()
        self._members: dict[str, StoryMember] = {}
        self._sketches: dict[str, tuple[int, ...]] = {}
        self._order: deque[tuple[datetime, str]] = deque()
        # Postings are insertion-ordered dicts used as ordered sets: the newest members are at the end.
        self._values: dict[int, dict[str, None]] = {}
        self._terms: dict[str, dict[str, None]] = {}

    def __len__(self) -> int:
        return len(self._members)

    def get(self, article_id: str) -> StoryMember | None:
        with self._lock:
            return self._members.get(article_id)

    def _insert(self, member: StoryMember) -> None:
        self._members[member.article_id] = member
        self._order.append((member.at, member.article_id))
        values = member.sketch()
        if values:
            self._sketches[member.article_id] = values
            for value in values:
                self._values.setdefault(value, {})[member.article_id] = None
        for term in member.title_terms:
            self._terms.setdefault(term, {})[member.article_id] = None

    @staticmethod
    def _unlink(index: dict[Any, dict[str, None]], keys: Iterable[Any], article_id: str) -> None:
        for key in keys:
            posting = index.get(key)
            if posting is not None:
                posting.pop(article_id, None)
                if not posting:
                    del index[key]

    def _remove(self, article_id: str) -> None:
        member = self._members.pop(article_id, None)
        if member is None:
            return
        self._unlink(self._values, self._sketches.pop(article_id, ()), article_id)
        self._unlink(self._terms, member.title_terms, article_id)

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

    def _candidates(self, terms: frozenset[str], values: tuple[int, ...]) -> tuple[set[str], set[str]]:
        """Articles worth comparing by body (enough shared sketch values) and by title (shared words)."""
        shared: Counter[str] = Counter()
        for value in values:
            posting = self._values.get(value)
            if posting:
                shared.update(_newest(posting))
        # A lead half contained in another shares about a third of its sketch values with it; ask for a
        # quarter (at least two): far fewer comparisons, no true match lost.
        needed = max(MIN_SHARED_VALUES, len(values) // 4)
        by_body = {cid for cid, n in shared.items() if n >= needed}
        by_title: set[str] = set()
        if len(terms) >= MIN_TITLE_TOKENS:
            # A title match shares all but 30% of these words: it is in one of the rarest 30% + 1 postings.
            postings = sorted((self._terms.get(t, {}) for t in terms), key=len)
            for posting in postings[: int((1 - TITLE_JACCARD) * len(terms)) + 1]:
                by_title.update(_newest(posting))
        return by_body, by_title

    def _best_match(self, terms: frozenset[str], values: tuple[int, ...], count: int) -> StoryMember | None:
        by_body, by_title = self._candidates(terms, values)
        best: tuple[float, datetime, str] | None = None
        found: StoryMember | None = None
        for cid in by_body | by_title:
            other = self._members[cid]
            score = 0.0
            if cid in by_body:
                c = containment(values, count, self._sketches[cid], other.shingle_count)
                if c >= BODY_CONTAINMENT:
                    score = c
            if cid in by_title and len(other.title_terms) >= MIN_TITLE_TOKENS:
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
        values = sketch(body) if len(body) >= MIN_SHINGLES else ()
        with self._lock:
            known = self._members.get(article_id)
            if known is not None:
                return known
            self._expire(at)
            match = self._best_match(terms, values, len(body))
            member = StoryMember(
                article_id=article_id,
                story_id=match.story_id if match else article_id,
                at=at,
                title_terms=terms,
                signature=_to_bytes(values) if values else None,
                shingle_count=len(body),
            )
            self._insert(member)
            return member

"""Labelled items: the project's training data and evaluation files in the same shape.

The training files (``monitor/classify/data/labelled-*.jsonl``) have ``id``, ``title``, ``summary``,
``relevant``, ``topics``, ``stance`` (null when not relevant) and ``split`` ("train" or "heldout").
Evaluation files such as ``articles-dev.jsonl`` have ``lead`` instead of ``summary``, no split, and may
use the stance "mixed", which is left out of the stance figures.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.classify.base import TextItem
from monitor.errors import ConfigError
from monitor.events import STANCE_LABELS, TOPICS

PACKAGED_DATA = Path(__file__).resolve().parent / "data"
STANCES_ALLOWED = (*STANCE_LABELS, "mixed")


@dataclass(frozen=True, slots=True)
class LabelledItem:
    """One labelled item. ``stance`` is None when not labelled (not relevant) and may be "mixed"."""

    id: str
    title: str
    summary: str
    relevant: bool
    topics: tuple[str, ...]
    stance: str | None
    split: str | None = None

    @property
    def text_item(self) -> TextItem:
        return TextItem(self.title, self.summary)


def line_error(source: str, lineno: int) -> Callable[..., ConfigError]:
    """A maker of errors about line ``lineno`` of ``source``: ``bad(key, expected, got)``."""

    def bad(key: str, expected: str, got: object = None) -> ConfigError:
        return ConfigError(source=f"{source}:{lineno}", key=key, expected=expected, got=got)

    return bad


def parse_text_line(line: str, *, source: str, lineno: int) -> tuple[dict[str, Any], TextItem]:
    """One JSON Lines record with ``title`` and an optional ``summary`` (or ``lead``): the object and
    its text; a ConfigError naming the file, line and key otherwise."""
    bad = line_error(source, lineno)
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise bad("<line>", f"one JSON object per line ({exc.msg})") from exc
    except RecursionError as exc:
        raise bad("<line>", "a JSON object nested less deeply") from exc
    if not isinstance(obj, dict):
        raise bad("<line>", "a JSON object", type(obj).__name__)
    title = obj.get("title")
    if not isinstance(title, str) or not title.strip():
        raise bad("title", "a non-empty string", title)
    summary = obj.get("summary", obj.get("lead")) or ""
    if not isinstance(summary, str):
        raise bad("summary", "a string", summary)
    return obj, TextItem(title, summary)


def _parse(line: str, *, source: str, lineno: int) -> LabelledItem:
    bad = line_error(source, lineno)
    obj, text = parse_text_line(line, source=source, lineno=lineno)
    title, summary = text.title, text.summary
    relevant = obj.get("relevant")
    if not isinstance(relevant, bool):
        raise bad("relevant", "true or false", relevant)
    topics = obj.get("topics") or []
    if not isinstance(topics, list) or any(t not in TOPICS for t in topics):
        raise bad("topics", f"a list of {list(TOPICS)}", topics)
    stance = obj.get("stance")
    if stance is not None and stance not in STANCES_ALLOWED:
        raise bad("stance", f"one of {list(STANCES_ALLOWED)} or null", stance)
    split = obj.get("split")
    if split not in (None, "train", "heldout"):
        raise bad("split", '"train" or "heldout"', split)
    ident = obj.get("id")
    if ident is None:
        ident = f"{Path(source).stem}:{lineno}"
    return LabelledItem(
        id=str(ident),
        title=title,
        summary=summary,
        relevant=relevant,
        topics=tuple(t for t in TOPICS if t in topics),
        stance=stance,
        split=split,
    )


def read_labelled(path: Path) -> list[LabelledItem]:
    """The items of one JSON Lines file; blank lines are skipped; errors name the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(source=str(path), key="", expected="a readable JSON Lines file") from exc
    return [
        _parse(line, source=str(path), lineno=n)
        for n, line in enumerate(text.splitlines(), start=1)
        if line.strip()
    ]


def labelled_files(directory: Path = PACKAGED_DATA) -> list[Path]:
    """The training files in ``directory`` (``labelled-*.jsonl``), in name order."""
    return sorted(directory.glob("labelled-*.jsonl"))


def read_training_data(directory: Path = PACKAGED_DATA) -> list[LabelledItem]:
    """All labelled training items; ids must be unique."""
    items: list[LabelledItem] = []
    for path in labelled_files(directory):
        items.extend(read_labelled(path))
    if not items:
        raise ConfigError(
            source=str(directory), key="labelled-*.jsonl", expected="at least one labelled file"
        )
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise ConfigError(source=str(directory), key=item.id, expected="unique item ids")
        seen.add(item.id)
    return items


def split(items: Iterable[LabelledItem], name: str) -> list[LabelledItem]:
    return [item for item in items if item.split == name]


def data_digest(items: Sequence[LabelledItem]) -> str:
    """A digest of the labelled data (order-independent): part of the model version."""
    digest = hashlib.sha256()
    for item in sorted(items, key=lambda i: i.id):
        record = [
            item.id,
            item.title,
            item.summary,
            item.relevant,
            list(item.topics),
            item.stance,
            item.split,
        ]
        digest.update(json.dumps(record, ensure_ascii=False, sort_keys=True).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()

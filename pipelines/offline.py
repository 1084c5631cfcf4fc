"""Offline classifier commands: ``monitor score``, ``monitor eval`` and ``monitor train`` (DESIGN §5)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from monitor.classify import Classifier, TextItem, load_classifier
from monitor.classify.data import (
    PACKAGED_DATA,
    line_error,
    parse_text_line,
    read_labelled,
    read_training_data,
)
from monitor.classify.evaluation import evaluate as evaluate_items
from monitor.classify.lexicon import RuleClassifier
from monitor.errors import ConfigError, MonitorError
from monitor.settings import Settings

log = logging.getLogger(__name__)


MAX_LINE_BYTES = 1024 * 1024
"""A ``monitor score`` input line longer than this is skipped (an article is a few KB)."""


@contextmanager
def _open_in(path: Path) -> Iterator[IO[bytes]]:
    if str(path) == "-":
        yield sys.stdin.buffer
        return
    try:
        with path.open("rb") as f:
            yield f
    except OSError as exc:
        raise ConfigError(source=str(path), key="--input", expected="a readable JSON Lines file") from exc


@contextmanager
def _open_out(path: Path | None) -> Iterator[IO[str]]:
    if path is None or str(path) == "-":
        yield sys.stdout
        return
    try:
        with path.open("w", encoding="utf-8") as f:
            yield f
    except OSError as exc:
        raise ConfigError(source=str(path), key="--output", expected="a writable file") from exc


class BadInputLine(MonitorError):
    """A ``monitor score`` input line that cannot be scored; says which line and why."""


@dataclass
class ScoreSummary:
    """What :func:`score_stream` did: items scored, and the lines skipped with the reason."""

    scored: int = 0
    skipped: list[str] = field(default_factory=list)


def _lines(f: IO[bytes]) -> Iterator[tuple[int, str | None, str]]:
    """``(lineno, text, problem)``: the text of each line (None, and why, when it cannot be read as text)."""
    lineno = 0
    while raw := f.readline(MAX_LINE_BYTES + 1):
        lineno += 1
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while (rest := f.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                pass  # skip the rest of the overlong line, never holding more than the limit
            yield lineno, None, f"a line of at most {MAX_LINE_BYTES} bytes"
            continue
        try:
            yield lineno, raw.decode("utf-8"), ""
        except UnicodeDecodeError as exc:
            yield lineno, None, f"UTF-8 text ({exc.reason} at byte {exc.start})"


def _batches(
    f: IO[bytes], source: str, size: int, summary: ScoreSummary, *, strict: bool
) -> Iterator[list[tuple[Any, TextItem]]]:
    batch: list[tuple[Any, TextItem]] = []
    for lineno, line, problem in _lines(f):
        try:
            if line is None:
                raise line_error(source, lineno)("<line>", problem)
            if not line.strip():
                continue
            batch.append(_parse_score_line(line, source=source, lineno=lineno))
        except ConfigError as exc:
            if strict:
                if batch:
                    yield batch  # what came before the bad line is scored first
                raise BadInputLine(f"{exc}; stopped there (--strict)") from exc
            summary.skipped.append(str(exc))
            log.warning("skipped %s", exc)
            continue
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _parse_score_line(line: str, *, source: str, lineno: int) -> tuple[Any, TextItem]:
    obj, text = parse_text_line(line, source=source, lineno=lineno)
    if "id" not in obj:
        raise line_error(source, lineno)("id", "an id for the item")
    return obj["id"], text


def score_stream(
    classifier: Classifier,
    f_in: IO[bytes],
    f_out: IO[str],
    *,
    source: str,
    batch_size: int,
    strict: bool = False,
) -> ScoreSummary:
    """Score JSON lines from ``f_in`` into ``f_out``.

    A line that cannot be scored (not UTF-8, not JSON, no id or title, too long or too deeply nested) is
    skipped and named in the summary; with ``strict``, :class:`BadInputLine` is raised at the first one,
    after the items before it were written.
    """
    summary = ScoreSummary()
    info = classifier.info
    for batch in _batches(f_in, source, batch_size, summary, strict=strict):
        for (ident, _), scores in zip(batch, classifier.score([item for _, item in batch]), strict=True):
            record = {
                "id": ident,
                **scores.to_json_dict(),
                "model": {"name": info.name, "version": info.version},
            }
            f_out.write(json.dumps(record, ensure_ascii=False) + "\n")
            summary.scored += 1
        f_out.flush()
    return summary


def score(args: argparse.Namespace, settings: Settings) -> int:
    """``monitor score --input IN.jsonl [--output OUT.jsonl] [--strict]``.

    Exit 0 when every line was scored; 1 when some were skipped (each named on stderr, the rest scored);
    2 with ``--strict`` at the first bad line.
    """
    classifier = load_classifier(settings.scorer)
    with _open_in(args.input) as f_in, _open_out(args.output) as f_out:
        try:
            summary = score_stream(
                classifier,
                f_in,
                f_out,
                source=str(args.input),
                batch_size=settings.scorer.batch_size,
                strict=bool(getattr(args, "strict", False)),
            )
        except BadInputLine as exc:
            print(f"monitor score: bad input line: {exc}", file=sys.stderr)
            return 2
    log.info("scored %d items with %s %s", summary.scored, classifier.info.name, classifier.info.version)
    if summary.skipped:
        for reason in summary.skipped:
            print(f"monitor score: skipped {reason}", file=sys.stderr)
        print(
            f"monitor score: {len(summary.skipped)} lines skipped, {summary.scored} scored", file=sys.stderr
        )
        return 1
    return 0


def _classifier(name: str, settings: Settings) -> Classifier:
    if name == "rules":
        return RuleClassifier()
    return load_classifier(settings.scorer)


def evaluate(args: argparse.Namespace, settings: Settings) -> int:
    """``monitor eval --input LABELLED.jsonl|DIR [--json] [--classifier model|rules] [--split NAME]``.

    A folder means its ``labelled-*.jsonl`` files (the project's training data, with ``--split heldout``).
    """
    items = read_training_data(args.input) if args.input.is_dir() else read_labelled(args.input)
    wanted = getattr(args, "split", None)
    if wanted:
        items = [item for item in items if item.split == wanted]
    if not items:
        raise ConfigError(source=str(args.input), key="split" if wanted else "", expected="labelled items")
    classifier = _classifier(getattr(args, "classifier", "model") or "model", settings)
    predictions = []
    batch = max(1, settings.scorer.batch_size)
    for start in range(0, len(items), batch):
        predictions.extend(classifier.score([item.text_item for item in items[start : start + batch]]))
    report = evaluate_items(items, predictions)
    info = classifier.info
    if args.json:
        print(
            json.dumps(
                {
                    "model": {"name": info.name, "version": info.version},
                    "input": str(args.input),
                    **report.to_json_dict(),
                },
                sort_keys=False,
            )
        )
    else:
        print(f"model: {info.name} {info.version}\ninput: {args.input}")
        print(report.format_text())
    return 0


def train(args: argparse.Namespace, settings: Settings) -> int:
    """``monitor train [--data DIR] [--output DIR] [--cache DIR]``: refit heads, print held-out figures."""
    from monitor.classify.artefact import PACKAGED_DIR
    from monitor.classify.train import run_training

    data_dir: Path = args.data or PACKAGED_DATA
    output: Path = args.output or settings.scorer.heads_dir or PACKAGED_DIR
    cache: Path = getattr(args, "cache", None) or settings.state_dir / "embedding-cache"
    items = read_training_data(data_dir)
    result = run_training(
        items,
        output=output,
        cache_dir=cache,
        model_dir=settings.scorer.model_dir,
        threads=settings.scorer.threads or 2,
    )
    print(f"trained {result.heads.name} {result.heads.version} on {result.train_items} items; wrote {output}")
    if result.heldout is not None:
        print(f"held-out split ({result.heldout_items} items):")
        print(result.heldout.format_text())
    return 0

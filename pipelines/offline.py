"""Offline classifier commands: ``monitor score``, ``monitor eval`` and ``monitor train`` (DESIGN §5)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
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
from monitor.errors import ConfigError
from monitor.settings import Settings

log = logging.getLogger(__name__)


@contextmanager
def _open_in(path: Path) -> Iterator[IO[str]]:
    if str(path) == "-":
        yield sys.stdin
        return
    try:
        with path.open(encoding="utf-8") as f:
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


def _parse_score_line(line: str, *, source: str, lineno: int) -> tuple[Any, TextItem]:
    obj, text = parse_text_line(line, source=source, lineno=lineno)
    if "id" not in obj:
        raise line_error(source, lineno)("id", "an id for the item")
    return obj["id"], text


def _batches(f: IO[str], source: str, size: int) -> Iterator[list[tuple[Any, TextItem]]]:
    batch: list[tuple[Any, TextItem]] = []
    for lineno, line in enumerate(f, start=1):
        if not line.strip():
            continue
        batch.append(_parse_score_line(line, source=source, lineno=lineno))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def score_stream(
    classifier: Classifier, f_in: IO[str], f_out: IO[str], *, source: str, batch_size: int
) -> int:
    """Score JSON lines from ``f_in`` into ``f_out``; returns the number of items scored."""
    n = 0
    info = classifier.info
    for batch in _batches(f_in, source, batch_size):
        for (ident, _), scores in zip(batch, classifier.score([item for _, item in batch]), strict=True):
            record = {
                "id": ident,
                **scores.to_json_dict(),
                "model": {"name": info.name, "version": info.version},
            }
            f_out.write(json.dumps(record, ensure_ascii=False) + "\n")
            n += 1
        f_out.flush()
    return n


def score(args: argparse.Namespace, settings: Settings) -> int:
    """``monitor score --input IN.jsonl [--output OUT.jsonl]``."""
    classifier = load_classifier(settings.scorer)
    with _open_in(args.input) as f_in, _open_out(args.output) as f_out:
        n = score_stream(
            classifier, f_in, f_out, source=str(args.input), batch_size=settings.scorer.batch_size
        )
    log.info("scored %d items with %s %s", n, classifier.info.name, classifier.info.version)
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

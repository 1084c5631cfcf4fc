"""The project's labelled data: shape, coverage and the fixed held-out split (what README.md promises)."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from monitor.classify.data import PACKAGED_DATA, read_labelled, read_training_data
from monitor.errors import ConfigError
from monitor.events import TOPICS

DEV = Path(__file__).resolve().parents[4] / "shared" / "eval" / "articles-dev.jsonl"


@pytest.fixture(scope="module")
def items():  # type: ignore[no-untyped-def]
    return read_training_data()


def test_enough_items_with_unique_ids(items) -> None:  # type: ignore[no-untyped-def]
    assert len(items) >= 700
    assert len({i.id for i in items}) == len(items)


def test_heldout_is_every_fifth_id(items) -> None:  # type: ignore[no-untyped-def]
    for item in items:
        number = int(re.search(r"(\d+)$", item.id).group(1))  # type: ignore[union-attr]
        assert item.split == ("heldout" if number % 5 == 0 else "train"), item.id


def test_labels_are_consistent(items) -> None:  # type: ignore[no-untyped-def]
    for item in items:
        if item.relevant:
            assert item.topics, item.id
            assert item.stance in ("strain", "cooperation", "neutral"), item.id
        else:
            assert item.topics == () and item.stance is None, item.id


def test_every_topic_has_both_poles_and_neutral_in_both_splits(items) -> None:  # type: ignore[no-untyped-def]
    for split in ("train", "heldout"):
        counts = Counter((t, i.stance) for i in items if i.split == split and i.relevant for t in i.topics)
        for topic in TOPICS:
            for stance in ("strain", "cooperation", "neutral"):
                assert counts[(topic, stance)] >= (3 if split == "train" else 1), (split, topic, stance)


def test_hard_negatives_are_there(items) -> None:  # type: ignore[no-untyped-def]
    negatives = [i for i in items if not i.relevant]
    assert len(negatives) >= 300
    text = " ".join(f"{i.title} {i.summary}" for i in negatives)
    for needle in ("China", "EU", "Pakistan", "Canada", "Fed"):
        assert needle in text, needle


@pytest.mark.skipif(not DEV.is_file(), reason="the shared dev file is not beside the checkout")
def test_no_dev_article_was_copied_into_the_training_data(items) -> None:  # type: ignore[no-untyped-def]
    def norm(s: str) -> str:
        return re.sub(r"\W+", " ", s.lower()).strip()

    ours = {norm(i.title) for i in items} | {norm(i.summary) for i in items if i.summary}
    for line in DEV.read_text(encoding="utf-8").splitlines():
        dev = json.loads(line)
        assert norm(dev["title"]) not in ours
        assert norm(dev.get("lead", "")) not in ours


def test_bad_lines_name_file_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "labelled-x.jsonl"
    path.write_text(
        '{"title": "t", "relevant": true, "topics": ["trade"], "stance": null}\n', encoding="utf-8"
    )
    with pytest.raises(ConfigError, match=r"labelled-x.jsonl:1: topics"):
        read_labelled(path)


def test_packaged_folder_holds_the_three_files() -> None:
    names = sorted(p.name for p in PACKAGED_DATA.glob("labelled-*.jsonl"))
    assert names == [
        "labelled-economy.jsonl",
        "labelled-generic.jsonl",
        "labelled-negatives.jsonl",
        "labelled-security.jsonl",
    ]

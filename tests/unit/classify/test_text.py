"""Sentence splitting and chunk planning (pure functions)."""

from __future__ import annotations

import pytest

from monitor.classify.text import clean, item_sentences, join_sentences, plan_chunks, split_sentences


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("One. Two.", ["One.", "Two."]),
        (
            "The U.S. President met Mr. Modi on Monday. U.S. officials said talks went well.",
            ["The U.S. President met Mr. Modi on Monday.", "U.S. officials said talks went well."],
        ),
        (
            "Tariffs fell to 18.5 per cent. Exporters cheered!",
            ["Tariffs fell to 18.5 per cent.", "Exporters cheered!"],
        ),
        ('"We are close," he said. "Very close."', ['"We are close," he said.', '"Very close."']),
        ("lower case after a stop. does not split", ["lower case after a stop. does not split"]),
        ("", []),
    ],
)
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


def test_clean_strips_tags_and_whitespace() -> None:
    assert clean("  <p>India&nbsp;and <b>US</b></p>\n sign  pact ") == "India&nbsp;and US sign pact"


def test_item_sentences_put_the_headline_first() -> None:
    assert item_sentences("India, US sign pact", "It covers ten years. Talks continue.") == [
        "India, US sign pact",
        "It covers ten years.",
        "Talks continue.",
    ]
    assert item_sentences("Headline only", "") == ["Headline only"]


def test_join_closes_a_headline_and_records_spans() -> None:
    chunk = join_sentences(["India, US sign pact", "It covers ten years."])
    assert chunk.text == "India, US sign pact. It covers ten years."
    for sentence, (start, end) in zip(chunk.sentences, chunk.spans, strict=True):
        assert chunk.text[start:end] == sentence
    assert chunk.sentence_at(0) == 0
    assert chunk.sentence_at(chunk.text.index("ten")) == 1
    assert chunk.sentence_at(chunk.spans[0][1]) == -1  # the separator belongs to no sentence


def words(text: str) -> int:
    return len(text.split())


def test_plan_chunks_packs_in_order_within_the_budget() -> None:
    sentences = ["a b c", "d e f g", "h i", "j k l m n o", "p"]
    chunks = plan_chunks(sentences, words, max_tokens=8, max_chunks=10)
    assert [c.sentences for c in chunks] == [("a b c", "d e f g"), ("h i",), ("j k l m n o", "p")]
    for chunk in chunks:
        assert sum(words(s) for s in chunk.sentences) + len(chunk.sentences) - 1 <= 8


def test_plan_chunks_keeps_the_first_chunks_only() -> None:
    sentences = [f"s{i} x x x x" for i in range(10)]
    chunks = plan_chunks(sentences, words, max_tokens=5, max_chunks=3)
    assert len(chunks) == 3
    assert chunks[0].sentences[0] == "s0 x x x x"


def test_a_sentence_over_budget_gets_a_chunk_of_its_own() -> None:
    chunks = plan_chunks(["short", "one two three four five six", "end"], words, max_tokens=3, max_chunks=5)
    assert [c.sentences for c in chunks] == [("short",), ("one two three four five six",), ("end",)]

"""``monitor score``'s stream, the packaged heads, and loading errors (no model needed)."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from monitor.classify import load_classifier
from monitor.classify.artefact import PACKAGED_DIR, HeadSet
from monitor.classify.lexicon import RuleClassifier
from monitor.errors import ModelError
from monitor.events import STANCE_LABELS, TOPICS
from monitor.settings import ScorerSettings
from pipelines.offline import BadInputLine, score_stream


def test_score_stream_writes_one_line_per_item() -> None:
    lines = [
        {
            "id": 1,
            "title": "India and US agree trade deal cutting tariffs",
            "summary": "Exports get a boost.",
        },
        {"id": "b", "title": "EU and US reach trade deal"},
        {
            "id": None,
            "title": "Trump's H-1B fee shock rattles Indian techies",
            "lead": "Families fear the hike.",
        },
    ]
    out = io.StringIO()
    summary = score_stream(
        RuleClassifier(),
        io.BytesIO(("\n".join(json.dumps(x) for x in lines) + "\n\n").encode()),
        out,
        source="in",
        batch_size=2,
    )
    assert (summary.scored, summary.skipped) == (3, [])
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["id"] for r in records] == [1, "b", None]
    first = records[0]
    assert set(first) >= {"id", "relevance", "relevant", "topics", "stance", "evidence", "model"}
    assert first["relevant"] is True and set(first["topics"]) == set(TOPICS)
    assert set(first["stance"]) == {"score", "label", "probabilities"}
    assert set(first["stance"]["probabilities"]) == set(STANCE_LABELS)
    assert records[1]["relevant"] is False
    assert records[2]["stance"]["label"] == "strain"


GOOD = [{"id": n, "title": f"India and US agree trade deal {n}"} for n in range(41)]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"not json", "in.jsonl:41: <line>: expected one JSON object per line"),
        (b'["a list"]', "in.jsonl:41: <line>: expected a JSON object"),
        (b'{"title": "no id"}', "in.jsonl:41: id: expected an id for the item"),
        (b'{"id": 1, "title": ""}', "in.jsonl:41: title: expected a non-empty string"),
        (b'{"id": 1, "title": "t", "summary": 5}', "in.jsonl:41: summary: expected a string"),
        (b"\xff\xfe\x00binary", "in.jsonl:41: <line>: expected UTF-8 text (invalid start byte at byte 0)"),
        (b"[" * 100_000 + b"]" * 100_000, "in.jsonl:41: <line>: expected a JSON object nested less deeply"),
        (b'{"id": 1, "title": "' + b"x" * (2 * 1024 * 1024) + b'"}', "in.jsonl:41: <line>: expected a line"),
    ],
    ids=["not-json", "list", "no-id", "empty-title", "bad-summary", "binary", "deep", "overlong"],
)
def test_a_bad_line_is_skipped_named_and_the_rest_scored(line: bytes, reason: str) -> None:
    # 40 good lines, the bad one as line 41, one more good line: nothing good is lost (batches of 16).
    data = b"".join(json.dumps(x).encode() + b"\n" for x in GOOD[:40]) + line + b"\n"
    data += json.dumps(GOOD[40]).encode() + b"\n"
    out = io.StringIO()
    summary = score_stream(RuleClassifier(), io.BytesIO(data), out, source="in.jsonl", batch_size=16)
    assert summary.scored == 41
    assert [json.loads(x)["id"] for x in out.getvalue().splitlines()] == list(range(41))
    [skipped] = summary.skipped
    assert skipped.startswith(reason)


def test_strict_stops_at_the_first_bad_line_after_scoring_what_came_before() -> None:
    data = b"".join(json.dumps(x).encode() + b"\n" for x in GOOD[:5]) + b"oops\n"
    data += json.dumps(GOOD[5]).encode() + b"\n"
    out = io.StringIO()
    with pytest.raises(BadInputLine, match=r"in.jsonl:6: <line>: .*stopped there \(--strict\)"):
        score_stream(RuleClassifier(), io.BytesIO(data), out, source="in.jsonl", batch_size=16, strict=True)
    assert [json.loads(x)["id"] for x in out.getvalue().splitlines()] == list(range(5))


def test_packaged_heads_are_small_complete_and_describe_themselves() -> None:
    heads = HeadSet.load()
    assert sum(p.stat().st_size for p in PACKAGED_DIR.iterdir()) < 100_000
    assert heads.name == "minilm-l6-india-us" and heads.version.startswith("1.")
    assert heads.relevance.labels == ("relevant",)
    assert heads.topics.labels == TOPICS and heads.stance.labels == STANCE_LABELS
    assert heads.encoder.startswith("all-MiniLM-L6-v2:")
    assert heads.relevance.weight.shape[0] == 1 and heads.topics.weight.shape[0] == 7
    assert heads.stance.weight.shape[0] == 3
    meta = heads.meta
    assert set(meta["heldout"]) >= {"relevance_f1", "topic_micro_f1", "topic_macro_f1", "stance_macro_f1"}
    assert meta["data"]["train_items"] + meta["data"]["heldout_items"] >= 700
    assert len(meta["calibration"]["stance"]["training_share"]) == 3


def test_missing_heads_name_the_folder_and_the_command(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="run `monitor train`"):
        HeadSet.load(tmp_path)


def test_missing_onnxruntime_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    with pytest.raises(ModelError, match=r"monitor\[classifier\]"):
        load_classifier(ScorerSettings(model_cache=tmp_path))


@pytest.mark.parametrize("backend", ["native", "transformers"])
def test_missing_torch_names_the_torch_extra(monkeypatch: pytest.MonkeyPatch, backend: str) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch -> ImportError
    with pytest.raises(ModelError, match=r"india-us-monitor\[torch\]"):
        load_classifier(ScorerSettings(backend=backend))  # type: ignore[arg-type]

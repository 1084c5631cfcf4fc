"""Evaluation figures on hand-made cases with known answers."""

from __future__ import annotations

import pytest

from monitor.classify import Scores
from monitor.classify.data import LabelledItem
from monitor.classify.evaluation import count, evaluate, stance_figures


def gold(relevant: bool, topics: tuple[str, ...], stance: str | None) -> LabelledItem:
    return LabelledItem("x", "t", "", relevant, topics, stance)


def pred(relevance: float, topics: dict[str, float], label: str) -> Scores:
    score = {"strain": -0.8, "cooperation": 0.8, "neutral": 0.0}[label]
    return Scores(relevance, topics, score, label, {"strain": 0.1, "cooperation": 0.1, "neutral": 0.8})  # type: ignore[arg-type]


def test_count_and_f1() -> None:
    f = count([True, True, False, False], [True, False, True, False])
    assert (f.tp, f.fp, f.fn) == (1, 1, 1)
    assert f.precision == 0.5 and f.recall == 0.5 and f.f1 == 0.5


def test_stance_macro_over_labels_present() -> None:
    s = stance_figures(["strain", "strain", "cooperation"], ["strain", "cooperation", "cooperation"])
    # strain F1 = 2/3, cooperation F1 = 2/3; neutral absent from gold and predictions: not averaged.
    assert s.macro_f1 == pytest.approx(2 / 3)
    assert s.confusion == [[1, 1, 0], [0, 1, 0], [0, 0, 0]]
    assert s.accuracy == pytest.approx(2 / 3)


def test_evaluate_end_to_end() -> None:
    items = [
        gold(True, ("trade_tariffs",), "cooperation"),
        gold(True, ("trade_tariffs", "energy_nuclear"), "mixed"),
        gold(True, ("defence",), "strain"),
        gold(False, (), "neutral"),
        gold(False, (), None),
    ]
    predictions = [
        pred(0.9, {"trade_tariffs": 0.8}, "cooperation"),
        pred(0.9, {"trade_tariffs": 0.8}, "strain"),  # mixed: not counted for stance
        pred(0.9, {"defence": 0.6, "technology": 0.7}, "strain"),
        pred(0.7, {}, "neutral"),  # a false positive for relevance
        pred(0.1, {}, "neutral"),
    ]
    report = evaluate(items, predictions)
    assert (report.relevance.tp, report.relevance.fp, report.relevance.fn) == (3, 1, 0)
    assert report.relevance.f1 == pytest.approx(6 / 7)
    # topics: trade 2 tp; energy 1 fn; defence 1 tp; technology 1 fp
    assert (report.topic_micro.tp, report.topic_micro.fp, report.topic_micro.fn) == (3, 1, 1)
    assert report.per_topic["technology"].f1 == 0.0
    assert report.topic_macro_f1 == pytest.approx((1.0 + 0.0 + 1.0 + 0.0) / 4)
    assert report.stance.n == 3 and report.stance.macro_f1 == 1.0
    assert report.stance_relevant.n == 2
    assert any("mixed" in note for note in report.notes)
    text = report.format_text()
    assert "relevance F1 0.857" in text and "confusion" in text
    summary = report.to_json_dict()
    assert summary["relevance_f1"] == pytest.approx(0.8571, abs=1e-4)
    assert summary["stance"]["confusion"]["rows_gold_columns_predicted"][0] == [1, 0, 0]


def test_evaluate_needs_one_prediction_per_item() -> None:
    with pytest.raises(ValueError, match="2 gold items but 1 predictions"):
        evaluate([gold(True, (), "strain")] * 2, [pred(0.9, {}, "strain")])

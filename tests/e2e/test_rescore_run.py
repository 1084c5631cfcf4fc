"""End to end without a broker: ``monitor run --once`` on a tariff strain feed, then ``monitor rescore`` of
the embedded bus and ``monitor eval-alerts``, with the real model and with a second artefact of it.

The second artefact is the packaged heads with the stance head's strain class switched off (its bias far
below the others): a model version that cannot see strain. Over the same history it can give no
tariff strain alert, while the packaged model, re-scored, gives back the alert the live run fired.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from e2e.test_run_once import _feed, _run_once
from feedserver import FeedServer
from stories import TARIFF_STRAIN

pytestmark = [pytest.mark.e2e, pytest.mark.model]


def strain_blind_heads(directory: Path) -> str:
    """The packaged heads with the strain class of the stance head switched off; returns the version."""
    from monitor.classify.artefact import HeadSet

    heads = HeadSet.load()
    stance = heads.stance
    bias = stance.bias.copy()
    bias[stance.labels.index("strain")] -= 1e4
    version = f"{heads.version}-no-strain"
    blind = dataclasses.replace(
        heads,
        stance=dataclasses.replace(stance, bias=bias),
        meta={**heads.meta, "version": version},
    )
    blind.save(directory)
    return version


def monitor(*argv: str, state: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MONITOR_", "KAFKA_"))}
    clean |= {"MONITOR_METRICS__PORT": "0", "HF_HUB_OFFLINE": "1", **env}
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *argv, "--state-dir", str(state)],
        capture_output=True,
        text=True,
        env=clean,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_rescore_the_embedded_bus_and_compare_the_alerts_of_two_model_versions(tmp_path):
    from monitor.bus import BUS_LOG_FILE
    from monitor.bus.buslog import read_topic
    from monitor.events import ArticleScored, decode

    state = tmp_path / "state"
    with FeedServer() as server:
        server.add("/tariffs.xml", _feed(TARIFF_STRAIN, slug="tariffs", hours=5), etag='"t1"')
        live = _run_once(server.url("/tariffs.xml"), state)
    assert live.returncode == 0, live.stderr[-3000:]
    fired = [json.loads(line) for line in live.stdout.splitlines() if line.strip()]
    strain = [a for a in fired if a["rule"] == "tariff_strain_high"]
    assert len(strain) == 1, fired

    # The same model again, into a topic of its own: the same judgements, the live arrival times.
    result = monitor("rescore", "--output-topic", "news.scored.v2", state=state)
    summary = json.loads(result.stdout)
    assert summary["read"] == summary["rescored"] == len(TARIFF_STRAIN)
    assert "monitor rescore: done" in result.stderr
    log = state / BUS_LOG_FILE
    before = {
        a.article_id: a for a in (decode(ArticleScored, r.value) for r in read_topic(log, "news.scored"))
    }
    again = [decode(ArticleScored, r.value) for r in read_topic(log, "news.scored.v2")]
    assert sorted(a.article_id for a in again) == sorted(before)
    for a in again:
        assert a.model == before[a.article_id].model and a.scored_at == before[a.article_id].scored_at
        assert a.stance.label == before[a.article_id].stance.label
        assert a.stance.score == pytest.approx(before[a.article_id].stance.score, abs=1e-4)

    same = json.loads(
        monitor("eval-alerts", "news.scored", "news.scored.v2", "--format", "json", state=state).stdout
    )
    assert same["differs"] is False
    episodes = {e["rule"]: e for e in same["episodes"]}
    assert episodes["tariff_strain_high"]["a"]["alert_id"] == strain[0]["alert_id"]  # the live episode

    # A model version that cannot see strain: over the same history, no tariff strain alert.
    version = strain_blind_heads(tmp_path / "heads")
    result = monitor(
        "rescore",
        "--output-topic",
        "news.scored.no-strain",
        state=state,
        MONITOR_SCORER__HEADS_DIR=str(tmp_path / "heads"),
    )
    assert json.loads(result.stdout)["model"]["version"] == version
    blind = [decode(ArticleScored, r.value) for r in read_topic(log, "news.scored.no-strain")]
    assert blind and all(a.stance.label != "strain" and a.stance.score >= 0 for a in blind)

    report = json.loads(
        monitor("eval-alerts", "news.scored", "news.scored.no-strain", "--format", "json", state=state).stdout
    )
    assert report["differs"] is True
    kinds = {(e["rule"], e["kind"]) for e in report["episodes"]}
    assert ("tariff_strain_high", "only_a") in kinds
    assert not any(e["b"] and e["rule"] == "tariff_strain_high" for e in report["episodes"])
    table = monitor("eval-alerts", "news.scored", "news.scored.no-strain", state=state).stdout
    assert "only_a" in table and "tariff_strain_high" in table

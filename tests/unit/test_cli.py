"""The console script runs every command the parser knows (DESIGN §5), and nothing else."""

from __future__ import annotations

import argparse

import pytest

from monitor.cli import build_parser
from pipelines.cli import handler

# (action, a command line that runs it)
COMMANDS = [
    ("run", ["run"]),
    ("poller", ["poller"]),
    ("scorer", ["scorer"]),
    ("alerter", ["alerter"]),
    ("status", ["status"]),
    ("score", ["score", "--input", "in.jsonl"]),
    ("eval", ["eval", "--input", "labelled.jsonl"]),
    ("train", ["train"]),
    ("rescore", ["rescore"]),
    ("eval-alerts", ["eval-alerts", "news.scored", "news.scored.v2"]),
    ("feeds check", ["feeds", "check", "feed.xml"]),
    ("feeds import", ["feeds", "import", "feeds.opml"]),
    ("alerts tail", ["alerts", "tail"]),
    ("topics create", ["topics", "create"]),
]


@pytest.mark.parametrize(("action", "argv"), COMMANDS, ids=[a for a, _ in COMMANDS])
def test_every_command_has_its_wiring(action: str, argv: list[str]) -> None:
    assert build_parser().parse_args(argv).action == action
    assert callable(handler(action))


def test_the_list_above_has_every_command_of_the_parser() -> None:
    [sub] = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    assert sorted(sub.choices) == sorted({argv[0] for _, argv in COMMANDS})


def test_an_unknown_action_is_refused() -> None:
    with pytest.raises(ValueError, match="no such command"):
        handler("launch")

"""Event-time signals per topic and overall: stance index, volume, distinct stories, strained share.

Pure logic, no I/O: :mod:`monitor.signals.windows` computes one window's signals from a set of articles;
:mod:`monitor.signals.engine` keeps the articles, runs the deterministic clock and yields evaluation ticks.
"""

from __future__ import annotations

from typing import Literal

from monitor.events import OVERALL, TOPICS

SignalName = Literal["stance_index", "volume", "stories", "strained_share"]
SIGNALS: tuple[SignalName, ...] = ("stance_index", "volume", "stories", "strained_share")
"""The signals computed per subject and window (the ``signal`` label of ``monitor_signal_value``)."""

SUBJECTS: tuple[str, ...] = (*TOPICS, OVERALL)
"""What a signal or rule is about: one topic label, or ``overall``."""

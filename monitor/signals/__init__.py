"""Event-time signals per topic and overall: stance index, volume, distinct stories, strained share.

Pure logic, no I/O: :mod:`monitor.signals.windows` computes one window's signals from a set of articles;
:mod:`monitor.signals.engine` keeps the articles, runs the deterministic clock and yields evaluation ticks.
"""

from __future__ import annotations

from typing import Literal

from monitor.events import OVERALL, TOPICS, Viewpoint

SignalName = Literal["stance_index", "volume", "stories", "strained_share"]
SIGNALS: tuple[SignalName, ...] = ("stance_index", "volume", "stories", "strained_share")
"""The signals computed per subject and window (the ``signal`` label of ``monitor_signal_value``)."""

SUBJECTS: tuple[str, ...] = (*TOPICS, OVERALL)
"""What a signal or rule is about: one topic label, or ``overall``."""

VIEWPOINT_SIGNALS: tuple[SignalName, ...] = ("stance_index", "volume", "stories")
"""The signals also published per viewpoint of the outlets (for each of :data:`SPLIT_VIEWPOINTS`)."""

SPLIT_VIEWPOINTS: tuple[Viewpoint, ...] = ("india", "us")
"""The viewpoints with their own signal series beside ``all``. ``international`` is the default (every feed
that declares no viewpoint), so its series would mostly repeat ``all`` and double the signal topic; rules
(``divergence``) may still compare it, since they read the articles, not the published series."""

"""How a feed poll ends: the closed vocabulary of poll outcomes.

The fetcher produces them, the poller and its schedule act on them, and ``monitor_feed_polls_total`` labels
its series with them (dashboards and alert rules name them: a contract).
"""

from __future__ import annotations

from typing import Literal, get_args

Outcome = Literal[
    "not_modified",
    "ok",
    "rate_limited",
    "client_error",
    "server_error",
    "network_error",
    "too_large",
    "parse_error",
]
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)
"""Every way a poll can end (the ``outcome`` label of ``monitor_feed_polls_total``)."""
SUCCESS_OUTCOMES: frozenset[str] = frozenset({"not_modified", "ok"})

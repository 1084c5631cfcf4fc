"""The ``monitor`` console script: parse the command line, build the settings once, run the command.

The commands and options are :func:`monitor.cli.build_parser`'s; each command's wiring is imported only
when that command runs (see :func:`handler`), so ``monitor --help`` stays fast and the classifier's heavy
imports load only for the commands that need them. Exit codes: 0 done, 1 a failure the command reports,
2 a configuration error (one line naming it), 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from monitor.cli import build_parser, configure_logging
from monitor.errors import ConfigError, MonitorError
from monitor.settings import Settings, load_settings

Handler = Callable[[argparse.Namespace, Settings], int]


def handler(action: str) -> Handler:
    """The function that runs ``action`` (a command of :func:`monitor.cli.build_parser`)."""
    match action:
        case "run":
            from pipelines.run import main as run

            return run
        case "poller":
            from pipelines.poller import main as poller

            return poller
        case "scorer":
            from pipelines.scorer import main as scorer

            return scorer
        case "alerter":
            from pipelines.alerter import main as alerter

            return alerter
        case "status":
            from pipelines.status import main as status

            return status
        case "score":
            from pipelines.offline import score

            return score
        case "eval":
            from pipelines.offline import evaluate

            return evaluate
        case "train":
            from pipelines.offline import train

            return train
        case "rescore":
            from pipelines.rescore import main as rescore

            return rescore
        case "eval-alerts":
            from pipelines.rescore import eval_alerts

            return eval_alerts
        case "feeds check":
            from pipelines.feedtools import check

            return check
        case "feeds import":
            from pipelines.feedtools import import_opml

            return import_opml
        case "alerts tail":
            from pipelines.alerttools import tail

            return tail
        case "topics create":
            from pipelines.topics import create

            return create
    raise ValueError(f"no such command: {action!r}")


def main(argv: Sequence[str] | None = None) -> int:
    """``monitor ...``: the one place that reads the environment (``MONITOR_*``)."""
    args = build_parser().parse_args(argv)
    overrides: dict[str, object] = {}
    if args.config is not None:
        overrides["config"] = args.config
    if args.log_level is not None:
        overrides["log_level"] = args.log_level
    if getattr(args, "state_dir", None) is not None:
        overrides["state_dir"] = args.state_dir
    try:
        settings = load_settings(os.environ, **overrides)
        configure_logging(settings)
        return handler(args.action)(args, settings)
    except ConfigError as exc:
        print(f"monitor: configuration error: {exc}", file=sys.stderr)
        return 2
    except MonitorError as exc:
        print(f"monitor: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())

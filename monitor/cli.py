"""The ``monitor`` command line (DESIGN §5): its commands and options, and how it logs.

:func:`build_parser` describes every command; each parsed command carries its ``action`` (``run``,
``feeds check``...). The console script, :func:`pipelines.cli.main`, builds the settings once and runs the
wiring of that action, importing it only then, so ``monitor --help`` stays fast and the classifier's heavy
imports load only for the commands that need them.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from monitor import __version__
from monitor.settings import Settings

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="monitor",
        description="Event-streaming news monitor for India-US relations.",
        epilog="Settings come from MONITOR_* environment variables (see README); feeds and rules from the "
        "YAML config file.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")

    def common_options(p: argparse.ArgumentParser, default: object) -> None:
        p.add_argument(
            "--config",
            type=Path,
            metavar="FILE",
            default=default,
            help="YAML config with feeds and rules (default: $MONITOR_CONFIG, else the packaged default)",
        )
        p.add_argument(
            "--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], default=default, help="log level"
        )

    common_options(parser, None)
    # Also after the command (`monitor run --config X`); there, absent means "as given before it".
    after = argparse.ArgumentParser(add_help=False)
    common_options(after, argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, parents=[after])
        p.set_defaults(action=name)
        return p

    run = add("run", "run the whole pipeline (poller, scorer, alerter) in one process")
    run.add_argument(
        "--once",
        action="store_true",
        help="poll each feed once, process everything, print the alerts that fired, exit",
    )
    run.add_argument(
        "--feed",
        action="append",
        default=[],
        metavar="URL",
        help="poll this feed URL instead of the configured feeds (repeatable)",
    )
    run.add_argument(
        "--state-dir", type=Path, metavar="DIR", help="where SQLite state lives (default: state/)"
    )

    add("poller", "run the feed poller stage on Kafka")
    add("scorer", "run the classifier stage on Kafka")
    add("alerter", "run the signals and alerts stage on Kafka")
    status = add(
        "status",
        "where things stand now: signals per topic and the alerts firing (local state, or Kafka)",
    )
    status.add_argument(
        "--state-dir", type=Path, metavar="DIR", help="the state folder of `monitor run` (default: state/)"
    )
    status.add_argument(
        "--format", choices=["text", "json"], default="text", help="a table (default) or one JSON object"
    )

    score = add("score", "score a JSON Lines file of articles offline")
    score.add_argument(
        "--input",
        type=Path,
        required=True,
        metavar="IN.jsonl",
        help="lines with id, title and optional summary ('-' for stdin)",
    )
    score.add_argument("--output", type=Path, metavar="OUT.jsonl", help="output file (default: stdout)")
    score.add_argument(
        "--strict",
        action="store_true",
        help="stop at the first bad line (exit 2) instead of skipping it (exit 1 at the end)",
    )

    ev = add("eval", "evaluate the classifier on a labelled JSON Lines file")
    ev.add_argument(
        "--input",
        type=Path,
        required=True,
        metavar="LABELLED.jsonl",
        help="lines with title, lead/summary, relevant, topics, stance",
    )
    ev.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    ev.add_argument(
        "--classifier",
        choices=["model", "rules"],
        default="model",
        help="the trained model (default) or the keyword baselines",
    )
    ev.add_argument(
        "--split",
        choices=["train", "heldout"],
        help="only the items of this split (files with a split field)",
    )

    train = add("train", "train the classifier heads from the labelled data")
    train.add_argument("--data", type=Path, metavar="DIR", help="labelled data (default: the packaged data)")
    train.add_argument(
        "--output", type=Path, metavar="DIR", help="where to write the heads (default: packaged)"
    )
    train.add_argument(
        "--cache", type=Path, metavar="DIR", help="embedding cache (default: STATE_DIR/embedding-cache)"
    )

    rescore = add(
        "rescore",
        "replay stored articles through the current model into news.scored (or --output-topic) under its "
        "version; reads from the beginning up to the end present at the start, commits nothing",
    )
    rescore.add_argument(
        "--output-topic",
        metavar="TOPIC",
        help="where the re-scored records go (default: the scored topic, news.scored); e.g. "
        "news.scored.v2 to judge a candidate model without touching the live stream",
    )
    rescore.add_argument(
        "--since",
        metavar="TIME",
        help="only articles published at or after TIME: RFC 3339, a date, or a duration back from now (30d)",
    )
    rescore.add_argument(
        "--classifier",
        choices=["model", "rules"],
        default="model",
        help="the model of the scorer settings (default) or the keyword baselines",
    )
    rescore.add_argument(
        "--state-dir", type=Path, metavar="DIR", help="without Kafka: the state folder of `monitor run`"
    )
    ev_alerts = add(
        "eval-alerts",
        "compare the alerts two scored histories give (e.g. two model versions over the same articles)",
    )
    for side in ("a", "b"):
        ev_alerts.add_argument(
            side,
            metavar=side.upper(),
            help="a scored topic (news.scored), TOPIC@VERSION for one model version's records, or a JSON "
            "Lines file of ArticleScored records",
        )
    ev_alerts.add_argument(
        "--format", choices=["text", "json"], default="text", help="a table (default) or one JSON object"
    )
    ev_alerts.add_argument(
        "--state-dir", type=Path, metavar="DIR", help="without Kafka: the state folder of `monitor run`"
    )

    feeds = sub.add_parser("feeds", help="feed tools", description="feed tools")
    feeds_sub = feeds.add_subparsers(dest="feeds_command", metavar="SUBCOMMAND", required=True)
    check = feeds_sub.add_parser(
        "check",
        parents=[after],
        help="fetch and parse feeds; print normalised entries as JSON lines",
        description="fetch and parse feeds; print each entry as one ArticleFetched JSON object per line",
    )
    check.add_argument("sources", nargs="+", metavar="FILE_OR_URL")
    check.set_defaults(action="feeds check")
    imp = feeds_sub.add_parser(
        "import",
        parents=[after],
        help="turn an OPML file into feed entries for monitor.yaml",
        description="turn an OPML file into feed entries for monitor.yaml",
    )
    imp.add_argument("opml", type=Path, metavar="FILE.opml")
    imp.add_argument(
        "--output",
        type=Path,
        metavar="FILE",
        help="config file to add the feeds to (default: print YAML to stdout)",
    )
    imp.set_defaults(action="feeds import")

    alerts = sub.add_parser("alerts", help="alert tools", description="alert tools")
    alerts_sub = alerts.add_subparsers(dest="alerts_command", metavar="SUBCOMMAND", required=True)
    tail = alerts_sub.add_parser(
        "tail",
        parents=[after],
        help="print alerts from the alert topic (or routed alert topics) as JSON lines",
        description="subscribe to the alert topic and print alerts",
    )
    tail.add_argument("--from-beginning", action="store_true", help="start at the oldest alert")
    tail.add_argument("--max", type=int, metavar="N", help="exit after N alerts")
    tail.add_argument(
        "--severity",
        action="append",
        choices=["info", "warning", "critical"],
        help="only alerts of this severity (repeatable)",
    )
    tail.add_argument(
        "--topic",
        action="append",
        metavar="TOPIC",
        help="read this alert topic instead of news.alerts, e.g. a routed news.alerts.critical (repeatable; "
        "a subject label such as 'defence' is read as --subject)",
    )
    tail.add_argument(
        "--subject", action="append", metavar="SUBJECT", help="only alerts about this subject (repeatable)"
    )
    tail.add_argument(
        "--format",
        choices=["json", "text"],
        default=None,
        help="json lines (default when piped) or one readable line per alert (terminals)",
    )
    tail.add_argument(
        "--timeout", type=float, metavar="SECONDS", help="exit after this many seconds without a new alert"
    )
    tail.set_defaults(action="alerts tail")

    topics = sub.add_parser("topics", help="Kafka topic tools", description="Kafka topic tools")
    topics_sub = topics.add_subparsers(dest="topics_command", metavar="SUBCOMMAND", required=True)
    create = topics_sub.add_parser(
        "create",
        parents=[after],
        help="create the Kafka topics (idempotent)",
        description="create news.articles, news.scored, news.signals, news.alerts, news.deadletter, "
        "news.alerter.lease and the alert topics the config file's routes name",
    )
    create.add_argument("--partitions", type=int, help="partitions per topic (default: settings)")
    create.add_argument("--replication-factor", type=int, help="replication factor (default: settings)")
    create.set_defaults(action="topics create")
    return parser


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {
                "time": self.formatTime(record),
                "level": record.levelname,
                "logger": record.name,
                "message": record.getMessage(),
            }
        )


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    for noisy in ("kafka", "apscheduler", "httpx", "httpcore", "transformers"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))

"""``monitor topics create``: create the project's Kafka topics (idempotent), the alert topics that the
config file's routes name included."""

from __future__ import annotations

import argparse
import dataclasses
import logging

from monitor.alerts.routes import routed_topics
from monitor.bus import topic_specs
from monitor.bus.kafka import KafkaBus
from monitor.config import load_config
from monitor.settings import Settings
from pipelines.process import require_kafka

log = logging.getLogger(__name__)


def create(args: argparse.Namespace, settings: Settings) -> int:
    require_kafka(settings, why="the Kafka bootstrap servers (host:port) to create the topics on")
    config = load_config(settings.config)
    specs = topic_specs(settings, routed=routed_topics(config.routes))
    if args.partitions is not None or args.replication_factor is not None:
        specs = [
            dataclasses.replace(
                s,
                partitions=args.partitions if args.partitions and s.partitions > 1 else s.partitions,
                replication_factor=args.replication_factor or s.replication_factor,
            )
            for s in specs
        ]
    bus = KafkaBus(settings.kafka)
    created = set(bus.create_topics(specs))
    for spec in specs:
        state = "created" if spec.name in created else "exists"
        print(
            f"{spec.name}\t{state}\tpartitions={spec.partitions}\treplication={spec.replication_factor}\t"
            + " ".join(f"{k}={v}" for k, v in sorted(spec.config.items()))
        )
    return 0

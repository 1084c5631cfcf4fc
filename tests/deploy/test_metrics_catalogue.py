"""What monitor.metrics exports: the names the dashboards and rules may read."""

from __future__ import annotations

import functools

from prometheus_client import CollectorRegistry

from monitor import metrics

# The metric groups of the catalogue (/tmp/metrics.md in the design notes; DESIGN §2): each stage's
# class lives in monitor/metrics.py and takes the registry as its first argument.
METRIC_GROUPS = ("StageMetrics", "PollerMetrics", "ScorerMetrics", "AlerterMetrics")


def _series_names(family_name: str, family_type: str) -> set[str]:
    if family_type == "counter":
        return {f"{family_name}_total"}
    if family_type == "histogram":
        return {f"{family_name}_bucket", f"{family_name}_sum", f"{family_name}_count"}
    if family_type == "summary":
        return {family_name, f"{family_name}_sum", f"{family_name}_count"}
    if family_type == "info":
        return {f"{family_name}_info"}
    return {family_name}


@functools.cache
def exported_series() -> frozenset[str]:
    """Every series name the project's metric classes can export, built on a fresh registry."""
    registry = CollectorRegistry()
    for group in METRIC_GROUPS:
        cls = getattr(metrics, group, None)
        assert cls is not None, f"monitor.metrics has no {group} yet"
        try:
            cls(registry)
        except TypeError:
            cls(registry=registry)
    metrics.build_info(registry, stage="test")
    names: set[str] = set()
    for family in registry.collect():
        names |= _series_names(family.name, family.type)
    return frozenset(names)


def test_the_catalogue_is_exported() -> None:
    """The names the deploy files were written against (the metric catalogue) all exist."""
    catalogue = {
        "monitor_records_consumed_total",
        "monitor_records_published_total",
        "monitor_deadletters_total",
        "monitor_stage_errors_total",
        "monitor_stage_batch_seconds_bucket",
        "monitor_consumer_lag_records",
        "monitor_stage_last_progress_timestamp_seconds",
        "monitor_build_info",
        "monitor_feed_polls_total",
        "monitor_feed_fetch_duration_seconds_bucket",
        "monitor_feed_fetched_bytes_total",
        "monitor_feed_entries_total",
        "monitor_articles_published_total",
        "monitor_feed_last_new_entry_timestamp_seconds",
        "monitor_feed_staleness_seconds",
        "monitor_feed_expected_interval_seconds",
        "monitor_feed_consecutive_failures",
        "monitor_feed_last_success_timestamp_seconds",
        "monitor_scheduler_lag_seconds_bucket",
        "monitor_articles_scored_total",
        "monitor_scorer_batch_size_bucket",
        "monitor_scorer_inference_seconds_bucket",
        "monitor_scorer_end_to_end_lag_seconds_bucket",
        "monitor_model_info",
        "monitor_signal_value",
        "monitor_viewpoint_signal_value",
        "monitor_alerts_total",
        "monitor_alert_state",
        "monitor_late_articles_total",
        "monitor_webhook_deliveries_total",
    }
    missing = sorted(catalogue - exported_series())
    assert not missing, f"monitor.metrics does not export {missing}"

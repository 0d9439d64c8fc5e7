"""The worker's Prometheus ``/metrics``: Temporal's own runtime exporter (its worker, poller and activity series) also
carries Flywheel's stage duration and queue wait histograms, under the TypeScript workers' names, labels and buckets
(observability/metrics.ts), so one query covers both kinds of worker.

Temporal names durations with a ``_seconds`` suffix and counters with ``_total`` here (``unit_suffix``,
``counters_total_suffix``), the Prometheus conventions the TypeScript series follow.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

#: Seconds, from a few ms (a quick stage) to an hour (a long training run): the TypeScript workers' buckets.
STAGE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
#: Seconds an activity task waited on its queue: a healthy fleet picks up in milliseconds.
WAIT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)
# The exporter appends `_seconds` to duration histograms: these become flywheel_stage_duration_seconds and
# flywheel_activity_queue_wait_seconds.
_STAGE = "flywheel_stage_duration"
_WAIT = "flywheel_activity_queue_wait"
#: Tries at a free port when none was asked for (another process may take the one picked before Temporal binds it).
_FREE_PORT_TRIES = 5


class MetricsUnavailable(Exception):
    """The metrics endpoint cannot listen where asked (a port in use, an address that does not parse)."""


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def metrics_url(host: str, port: int) -> str:
    return f"http://{_host_port(host, port)}/metrics"


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def queue_wait_seconds(scheduled: Optional[datetime], started: datetime) -> float:
    """An attempt's start minus its scheduling, never negative (the worker's and the server's clocks differ)."""
    if scheduled is None:
        return 0.0
    if scheduled.tzinfo is None:
        scheduled = scheduled.replace(tzinfo=timezone.utc)
    return max(0.0, (started - scheduled).total_seconds())


@dataclass
class WorkerMetrics:
    """The Temporal runtime that serves ``url`` (the worker's client must connect with it) and Flywheel's series."""

    runtime: Any
    url: str
    stage_duration: Any
    queue_wait: Any

    def attempt_started(self, activity_type: str, task_queue: str, scheduled: Optional[datetime]) -> None:
        waited = queue_wait_seconds(scheduled, datetime.now(timezone.utc))
        self.queue_wait.record(timedelta(seconds=waited), {"activity_type": activity_type, "task_queue": task_queue})

    def attempt_ended(self, stage: str, outcome: str, seconds: float) -> None:
        """``outcome``: completed, failed or cancelled."""
        self.stage_duration.record(timedelta(seconds=max(0.0, seconds)), {"stage": stage, "outcome": outcome})


def start_metrics(host: str = "127.0.0.1", port: int = 0) -> WorkerMetrics:
    """A Temporal runtime whose Prometheus exporter listens on ``host:port`` (0: a free port); raises
    :class:`MetricsUnavailable` when it cannot."""
    from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

    tries = 1 if port else _FREE_PORT_TRIES
    for attempt in range(tries):
        try:
            chosen = port or _free_port(host)
        except OSError as error:
            raise MetricsUnavailable(f"metrics on {host}: {error}") from None
        try:
            runtime = Runtime(
                telemetry=TelemetryConfig(
                    metrics=PrometheusConfig(
                        bind_address=_host_port(host, chosen),
                        counters_total_suffix=True,
                        unit_suffix=True,
                        durations_as_seconds=True,
                        histogram_bucket_overrides={_STAGE: STAGE_BUCKETS, _WAIT: WAIT_BUCKETS},
                    ),
                    # The TypeScript series carry no service_name label; queries must not need to tell them apart.
                    attach_service_name=False,
                )
            )
        except ValueError as error:
            if port or attempt == tries - 1 or "in use" not in str(error):
                raise MetricsUnavailable(f"metrics on {_host_port(host, chosen)}: {error}") from None
            continue
        meter = runtime.metric_meter
        return WorkerMetrics(
            runtime=runtime,
            url=metrics_url(host, chosen),
            stage_duration=meter.create_histogram_timedelta(
                _STAGE, "Run time of each stage activity attempt on this worker, by stage (activity type) and outcome"
            ),
            queue_wait=meter.create_histogram_timedelta(
                _WAIT, "Time from an activity attempt's scheduling to its start on this worker (schedule → start)"
            ),
        )
    raise AssertionError("unreachable")

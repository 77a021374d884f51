"""Metrics and logs. Prometheus on RIG_METRICS_PORT: the SDK's metrics, the rig's own (emitted by
workflows through their replay-safe metric meter) and the book gauges of worker/book_metrics.py.
JSON logs with RIG_LOG_FORMAT=json, each line carrying the workflow id (= intent_id for orders,
risk-<account> for accounts)."""

from __future__ import annotations

import json
import logging
import os

from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

# Milliseconds. The SDK's default buckets start at 50 ms; a pre-trade check (the order's
# `request_pretrade` local activity: an update on its account) and a workflow task's wait for a
# worker are a few ms when healthy, so p50/p99 need finer buckets at the low end.
FINE_MS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000, 60000]
LATENCY_BUCKETS = {
    "temporal_local_activity_execution_latency": FINE_MS,
    "temporal_workflow_task_schedule_to_start_latency": FINE_MS,
    "temporal_workflow_task_execution_latency": FINE_MS,
    "rig_cycle_lag": FINE_MS,  # recorded by the account's clock when a cycle's timer fires
}


def metrics_runtime() -> Runtime | None:
    port = os.environ.get("RIG_METRICS_PORT")
    if not port:
        return None
    bind = os.environ.get("RIG_METRICS_BIND", "0.0.0.0")
    prometheus = PrometheusConfig(bind_address=f"{bind}:{int(port)}", histogram_bucket_overrides=LATENCY_BUCKETS)
    return Runtime(telemetry=TelemetryConfig(metrics=prometheus))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {"time": self.formatTime(record), "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        wf = getattr(record, "temporal_workflow", None)
        if isinstance(wf, dict):
            line["workflow_id"] = wf.get("workflow_id")
            line["workflow_type"] = wf.get("workflow_type")
            workflow_id = str(wf.get("workflow_id") or "")
            if workflow_id.startswith("risk-"):
                line["account"] = workflow_id.removeprefix("risk-")
            elif wf.get("workflow_type") == "OrderWorkflow":
                line["intent_id"] = workflow_id
        act = getattr(record, "temporal_activity", None)
        if isinstance(act, dict):
            line["activity_type"] = act.get("activity_type")
            line["workflow_id"] = act.get("workflow_id")
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line)


def configure_logging() -> None:
    handler = logging.StreamHandler()
    if os.environ.get("RIG_LOG_FORMAT", "text").lower() == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.basicConfig(level=os.environ.get("RIG_LOG_LEVEL", "INFO"), handlers=[handler], force=True)

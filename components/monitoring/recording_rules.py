"""The recording rules that compute the signals of a scope, read by its alerts and by the dashboards.

``components/monitoring/signals.py`` names the signals; this module writes the PromQL that
records each one from the raw metrics, with the ``service`` label set (see signals.py for why
nothing else computes a ``rate()`` or ``histogram_quantile()``).
"""

from __future__ import annotations

from components.contracts import HealthProbe
from components.monitoring.alert_rules import RuleBuilder
from components.monitoring.signals import LATENCY_SIGNALS, RATE_WINDOW, RecordingRule, Signal, eq, record


class SignalRules(RuleBuilder):
    """The recording rules of one scope's signals."""

    def _per_job_rate(self, *matchers: str, metric: str = "http_requests_total") -> str:
        selector = self.scope.select(metric, self.scope.match("job"), *matchers)
        return f"sum by (namespace, job) (rate({selector}[{RATE_WINDOW}]))"

    def service_signals(self) -> list[RecordingRule]:
        """Per service: up, traffic, 5xx share and latency quantiles, the last two only above the traffic floor."""
        scope, alerts = self.scope, self.alerts
        requests, errors = self._per_job_rate(), self._per_job_rate('code=~"5.."')
        buckets = scope.select("http_request_duration_seconds_bucket", scope.match("job"))
        # Two slow requests out of three at night are noise too: latency has the error ratio's floor.
        floor = f"{self._per_job_rate(metric='http_request_duration_seconds_count')} >= " \
                f"{alerts.error_ratio_min_request_rate}"
        quantiles = [
            record(signal, scope.service_from(f"histogram_quantile({quantile}, sum by (namespace, job, le) "
                                              f"(rate({buckets}[{RATE_WINDOW}])))\nand\n{floor}", "job"))
            for quantile, signal in LATENCY_SIGNALS.items()
        ]
        up = f"max by (namespace, job) ({scope.select('up', scope.match('job'))})"
        return [
            record(Signal.UP, scope.service_from(up, "job")),
            record(Signal.REQUESTS, scope.service_from(requests, "job")),
            record(Signal.ERROR_RATIO, scope.service_from(
                f"(\n  {errors}\n  /\n  {requests}\n)\n"
                f"and\n{requests} >= {alerts.error_ratio_min_request_rate}", "job"),
            ),
            *quantiles,
        ]

    def container_signals(self) -> list[RecordingRule]:
        """Per container: CPU and working-set memory as a share of the container's limit."""
        scope, by = self.scope, "by (namespace, pod, container)"

        def of_limit(usage: str, resource: str) -> str:
            limits = scope.select("kube_pod_container_resource_limits", scope.match("container"),
                                  eq("resource", resource))
            return scope.service_from(f"{usage}\n/ on (namespace, pod, container)\nsum {by} ({limits})", "container")

        cpu = scope.select("container_cpu_usage_seconds_total", scope.match("container"))
        memory = scope.select("container_memory_working_set_bytes", scope.match("container"))
        return [record(Signal.CPU, of_limit(f"sum {by} (rate({cpu}[{RATE_WINDOW}]))", "cpu")),
                record(Signal.MEMORY, of_limit(f"max {by} ({memory})", "memory"))]

    def dependency_signal(self, probe: HealthProbe) -> RecordingRule:
        """The exporter's health metric per pod; a constant service label (the exporter's Service is ours)."""
        expr = f"max by (namespace, pod) ({self.scope.select(probe.metric)})"
        return {"record": probe.signal,
                "expr": self.scope.service_from(expr, "namespace", ".*", probe.dependency.value)}

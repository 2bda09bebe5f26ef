"""The per-container alerts every rule group has, a catalog tier's and the data tier's alike.

CPU and memory saturation compare the recorded share of the container's limit with the stack's
thresholds (critical and warning); a crash loop reads kube-state-metrics' waiting reason.
"""

from __future__ import annotations

from components.monitoring.alert_rules import CONTAINER, PERCENT, POD, AlertingRule, AlertName, RuleBuilder, percent
from components.monitoring.signals import RATE_WINDOW, Signal, eq
from services.tiers import Severity


class ContainerAlerts(RuleBuilder):
    """The alerts on the containers of one scope."""

    def saturation(self) -> list[AlertingRule]:
        scope, alerts = self.scope, self.alerts
        signals = (
            (AlertName.CPU_SATURATION, "CPU", Signal.CPU,
             ((Severity.CRITICAL, alerts.cpu_critical), (Severity.WARNING, alerts.cpu_warning))),
            (AlertName.MEMORY_SATURATION, "memory", Signal.MEMORY,
             ((Severity.CRITICAL, alerts.memory_critical), (Severity.WARNING, alerts.memory_warning))),
        )
        return [
            self.rule(
                name, severity, f"{scope.signal(signal, 'container')} > {threshold}",
                for_=alerts.saturation_for,
                summary=f"{POD} uses {PERCENT} of its {resource} limit",
                description=f"Container {CONTAINER} of pod {POD} has used more than {percent(threshold)} of its "
                            f"{resource} limit for {alerts.saturation_for}.",
            )
            for name, resource, signal, thresholds in signals
            for severity, threshold in thresholds
        ]

    def crash_loop(self) -> AlertingRule:
        scope, for_ = self.scope, self.alerts.crash_loop_for
        waiting = scope.select("kube_pod_container_status_waiting_reason", scope.match("container"),
                               eq("reason", "CrashLoopBackOff"))
        expr = f"max by (namespace, pod, container) (max_over_time({waiting}[{RATE_WINDOW}])) >= 1"
        return self.rule(
            AlertName.POD_CRASH_LOOPING, Severity.CRITICAL, scope.service_from(expr, "container"), for_=for_,
            summary=f"{POD} is crash-looping",
            description=f"Container {CONTAINER} of pod {POD} has been in CrashLoopBackOff for {for_}.",
        )

"""The per-service alerts of a catalog tier: down, errors, latency, its certificate, its rollouts.

A tier's scope lists its services (``signals.tier_scope``), so every alert here covers each
service of the tier with one regex, at the tier's own severities and latency objective.
"""

from __future__ import annotations

from components.monitoring.alert_rules import (
    DEPLOYMENT,
    NAME,
    PERCENT,
    SERVICE,
    AlertingRule,
    AlertName,
    RuleBuilder,
    percent,
)
from components.monitoring.signals import RATE_WINDOW, Signal, eq
from components.names import tls_secret_name
from services.tiers import Severity, Tier

#: cert-manager's ingress-shim names an Ingress's Certificate after its TLS Secret (``<service>-tls``).
TLS_SECRET_SUFFIX = tls_secret_name("")
SECONDS_PER_DAY = 86400


class ServiceAlerts(RuleBuilder):
    """The alerts on the services of one catalog tier."""

    def service_down(self, severity: Severity) -> AlertingRule:
        scope, for_ = self.scope, self.alerts.service_down_for
        # No target answering, or no target at all (Deployment gone, Service selecting nothing).
        absent = [f"absent({scope.select(Signal.UP, eq('job', name), eq('service', name))})"
                  for name in scope.services]
        expr = "\nor ".join([f"{scope.signal(Signal.UP, 'job')} == 0", *absent])
        return self.rule(
            AlertName.SERVICE_DOWN, severity, expr, for_=for_,
            summary=f"{SERVICE} is down",
            description=f"No target of {SERVICE} ({scope.tier} tier) in {scope.namespace} has answered a scrape "
                        f"for {for_}: every pod is failing or none is running.",
        )

    def error_ratio(self) -> list[AlertingRule]:
        scope, alerts = self.scope, self.alerts
        return [
            self.rule(
                AlertName.ERROR_RATIO_HIGH, severity, f"{scope.signal(Signal.ERROR_RATIO, 'job')} > {threshold}",
                for_=alerts.error_ratio_for,
                summary=f"{SERVICE} fails {PERCENT} of its requests",
                description=f"More than {percent(threshold)} of the requests to {SERVICE} have been answered with a "
                            f"5xx status for {alerts.error_ratio_for} (measured over {RATE_WINDOW}).",
            )
            for severity, threshold in ((Severity.CRITICAL, alerts.error_ratio_critical),
                                        (Severity.WARNING, alerts.error_ratio_warning))
        ]

    def latency(self, tier: Tier) -> AlertingRule:
        scope, alerts = self.scope, self.alerts
        objective = alerts.latency_p95_seconds[tier]
        return self.rule(
            AlertName.LATENCY_HIGH, Severity.WARNING, f"{scope.signal(Signal.LATENCY_P95, 'job')} > {objective}",
            for_=alerts.latency_for,
            summary=f"{SERVICE} answers slowly: p95 {{{{ $value | humanizeDuration }}}}",
            description=f"The 95th percentile latency of {SERVICE} has been above the {tier.value} tier's objective "
                        f"of {objective}s for {alerts.latency_for}.",
        )

    def certificate(self) -> AlertingRule:
        scope, days = self.scope, self.alerts.certificate_expiry_days
        # cert-manager's own namespace is `namespace` on its metrics; the Certificate's is `exported_namespace`.
        expiry = scope.select("certmanager_certificate_expiration_timestamp_seconds",
                              scope.match("name", scope.certificates), namespace_label="exported_namespace")
        expr = f"(min by (exported_namespace, name) ({expiry}) - time()) / {SECONDS_PER_DAY} < {days}"
        return self.rule(
            AlertName.CERTIFICATE_EXPIRING, Severity.WARNING,
            scope.service_from(expr, "name", f"(.*){TLS_SECRET_SUFFIX}"), for_=self.alerts.certificate_for,
            summary=f'The TLS certificate of {SERVICE} expires in {{{{ $value | printf "%.1f" }}}} days',
            description=f"Certificate {NAME} in {scope.namespace} expires within {days} days; cert-manager renews "
                        "30 days ahead, so renewal is failing.",
        )

    # --- rollouts: kube-state-metrics' view of the tier's Deployments ----------------------

    def _deployment_series(self, metric: str, *matchers: str) -> str:
        deployments = self.scope.match("deployment", self.scope.deployments)
        return self.scope.select(f"kube_deployment_{metric}", deployments, *matchers)

    def _deployment_alert(self, name: AlertName, expr: str, *,
                          for_: str, summary: str, description: str) -> AlertingRule:
        """An info alert on a Deployment, reported as the service the Deployment belongs to."""
        # Extra Deployments of a service (canary, blue, green) report as the service.
        owner = f"({'|'.join(self.scope.services)})(?:-.+)?"
        return self.rule(name, Severity.INFO, self.scope.service_from(expr, "deployment", owner),
                         for_=for_, summary=summary, description=description)

    def rollouts(self) -> list[AlertingRule]:
        alerts, ksm = self.alerts, self._deployment_series
        progressing = ksm("status_condition", eq("condition", "Progressing"), eq("status", "false"))
        return [
            # Pods of an older ReplicaSet still run: a new version is rolling out.
            self._deployment_alert(
                AlertName.ROLLOUT_IN_PROGRESS, f"{ksm('status_replicas')}\n> {ksm('status_replicas_updated')}",
                for_=alerts.rollout_in_progress_for,
                summary=f"{DEPLOYMENT} is rolling out a new version",
                description=f"{DEPLOYMENT} still runs pods of its previous version; this clears when the rollout "
                            "ends.",
            ),
            self._deployment_alert(
                AlertName.ROLLOUT_STUCK, f"{progressing} == 1", for_=alerts.rollout_stuck_for,
                summary=f"The rollout of {DEPLOYMENT} is stuck",
                description=f"{DEPLOYMENT} exceeded its progress deadline: new pods do not become ready. The "
                            "previous version keeps serving (maxUnavailable 0).",
            ),
            self._deployment_alert(
                AlertName.REPLICAS_MISMATCH, f"{ksm('spec_replicas')}\n!= {ksm('status_replicas_available')}",
                for_=alerts.replicas_mismatch_for,
                summary=f"{DEPLOYMENT} runs fewer available replicas than desired",
                description=f"{DEPLOYMENT} has not had its desired number of available replicas for "
                            f"{alerts.replicas_mismatch_for}: pods pending (quota, capacity) or not ready.",
            ),
        ]

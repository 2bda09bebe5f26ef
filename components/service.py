"""One Codai service: everything it needs to run, scale, be reached and be watched."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
from pulumi_kubernetes.apps.v1 import DeploymentSpecArgsDict
from pulumi_kubernetes.autoscaling.v2 import MetricSpecArgsDict
from pulumi_kubernetes.core.v1 import (
    ContainerArgsDict,
    EnvFromSourceArgsDict,
    ProbeArgsDict,
    TopologySpreadConstraintArgsDict,
)
from pulumi_kubernetes.meta.v1 import ObjectMetaArgsDict
from pulumi_kubernetes.networking.v1 import (
    IngressSpecArgsDict,
    NetworkPolicyEgressRuleArgsDict,
    NetworkPolicyIngressRuleArgsDict,
)

from components.base import PlatformComponent
from components.contracts import DependencyBinding
from components.foundation import dns_egress_rule
from components.labels import TRACK, labels, metadata, selector, track_selector
from components.security import (
    SECRETS_AS_ENVIRONMENT,
    ScannerException,
    container_security_context,
    pinned_by_tag_skips,
    pod_security_context,
)
from settings.base import duration_seconds
from settings.environment import EnvironmentSettings
from settings.monitoring import MonitoringSettings
from settings.resolve import ResolvedService, Workload
from settings.rollout import RolloutStrategy

HTTP_PORT_NAME = "http"
METRICS_PORT_NAME = "metrics"
#: Addresses that are not the public internet: "external" egress never means another pod, the node,
#: the cloud's metadata endpoint (169.254.169.254) or a carrier-grade NAT neighbour.
PRIVATE_RANGES = [
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",  # private (RFC 1918): pods, services, nodes
    "169.254.0.0/16",  # link-local, the metadata endpoint included
    "100.64.0.0/10",  # shared address space (RFC 6598), used by some clouds for pods
    "0.0.0.0/8", "127.0.0.0/8",  # "this network" and loopback
    "224.0.0.0/4", "240.0.0.0/4",  # multicast and reserved
]



def deployment_name(service: str, track: str) -> str:
    """The Deployment of a track: the stable track has the service's name, others a suffix (``-canary``)."""
    return service if track == "stable" else f"{service}-{track}"


def tls_secret_name(service: str) -> str:
    """The Secret cert-manager fills with a public service's certificate."""
    return f"{service}-tls"

@dataclass(frozen=True)
class Peer:
    """Another service this one talks to (or is called by), as NetworkPolicies need it."""

    name: str
    port: int


@dataclass(frozen=True)
class ServiceArgs:
    plan: ResolvedService
    stack: str
    environment: EnvironmentSettings
    monitoring: MonitoringSettings
    priority_class_name: str
    #: Services allowed to call this one, and the services this one calls.
    callers: list[str] = field(default_factory=list)
    callees: list[Peer] = field(default_factory=list)
    #: Shared dependencies (PostgreSQL, Redis) made for this service.
    bindings: list[DependencyBinding] = field(default_factory=list)

    @property
    def namespace(self) -> str:
        return self.environment.namespace

    @property
    def host(self) -> str:
        return f"{self.plan.name}.{self.environment.domain}"


class CodaiService(PlatformComponent):
    """ServiceAccount, ConfigMap, Secret, Deployment, Service, HPA, PDB, NetworkPolicy, Ingress, ServiceMonitor."""

    url: str | None

    def __init__(
        self,
        name: str,
        args: ServiceArgs,
        opts: pulumi.ResourceOptions | None = None,
        depends_on: list[pulumi.Resource] | None = None,
    ) -> None:
        super().__init__("codai:platform:Service", name, opts, depends_on or [])
        self.args = args
        plan = args.plan
        self.labels = labels(plan.name, "app", plan.tier.value)
        self.url = f"https://{args.host}" if plan.spec.public else None

        service_account = k8s.core.v1.ServiceAccount(
            f"{name}-service-account",
            metadata=self._meta(plan.name),
            # The services do not call the Kubernetes API: no token in their pods.
            automount_service_account_token=False,
            opts=self.child_opts(),
        )
        config_data = self._config_data()
        config_map = k8s.core.v1.ConfigMap(
            f"{name}-config",
            metadata=self._meta(f"{plan.name}-config"),
            data=config_data,
            opts=self.child_opts(),
        )
        secret_names = [binding.secret_name for binding in args.bindings]
        if plan.spec.generated_secrets:
            secret_names.insert(0, self._generated_secret(name).metadata.name)  # type: ignore[arg-type]

        self.deployments = {
            workload.track: self._deployment(name, workload, service_account=service_account, config_map=config_map,
                                             config_data=config_data, secret_names=secret_names)
            for workload in plan.workloads
        }
        service = self._service(name, plan.name, track_selector(plan.name, plan.live.track))
        # The non-live Deployment gets its own Service, so that it is scraped and reachable:
        # `<name>-canary` for the canary Ingress, `<name>-preview` for smoke tests of the idle
        # colour. The preview keeps its name when colours switch; only its selector moves.
        side_services = {
            role: self._service(f"{name}-{role}", f"{plan.name}-{role}", track_selector(plan.name, workload.track))
            for workload in plan.workloads if not workload.live
            for role in ["canary" if workload.track == "canary" else "preview"]
        }
        deployment = self.deployments[plan.live.track]
        self._autoscaler(name, deployment)
        self._disruption_budget(name)
        self._network_policy(name)
        if plan.spec.public:
            self._ingress(name, service)
            if plan.strategy == RolloutStrategy.CANARY:
                self._canary_ingress(name, side_services["canary"])
        self._service_monitor(name, [service, *side_services.values()])
        self.register_outputs({"url": self.url, "deployment": deployment.metadata.name})

    # --- metadata and configuration ------------------------------------------------------

    def _meta(
        self,
        object_name: str,
        annotations: dict[str, str] | None = None,
        skips: Sequence[ScannerException] = (),
    ) -> ObjectMetaArgsDict:
        return metadata(object_name, self.args.namespace, self.labels, annotations, skips)

    def _config_data(self) -> dict[str, str]:
        plan, args = self.args.plan, self.args
        data = {
            "SERVICE_NAME": plan.name,
            "SERVICE_TIER": plan.tier.value,
            "ENVIRONMENT": args.stack,
            "PORT": str(plan.spec.port),
            "METRICS_PORT": str(plan.spec.metrics_port),
            "PUBLIC_URL": self.url or "",
            # Callees by cluster DNS name, so a service finds the others without hard-coding.
            **{f"{peer.name.upper()}_URL": f"http://{peer.name}.{args.namespace}.svc" for peer in args.callees},
        }
        data.update({f"FEATURE_{_upper_snake(flag)}": _flag_text(value) for flag, value in plan.feature_flags.items()})
        data.update(plan.env)
        return dict(sorted(data.items()))

    def _generated_secret(self, name: str) -> k8s.core.v1.Secret:
        plan = self.args.plan
        values: dict[str, pulumi.Output[str]] = {}
        for key in plan.spec.generated_secrets:
            password = random.RandomPassword(
                f"{name}-{key.lower().replace('_', '-')}",
                length=48,
                special=False,
                opts=pulumi.ResourceOptions(parent=self),
            )
            values[key] = password.result
        return k8s.core.v1.Secret(
            f"{name}-app-secrets",
            metadata=self._meta(f"{plan.name}-app-secrets"),
            type="Opaque",
            string_data=values,
            opts=self.child_opts(),
        )

    # --- the workloads -------------------------------------------------------------------

    def _service(self, resource_name: str, object_name: str, pods: dict[str, str]) -> k8s.core.v1.Service:
        return k8s.core.v1.Service(
            f"{resource_name}-service",
            metadata=self._meta(object_name),
            spec={
                "type": "ClusterIP",
                "selector": pods,
                "ports": [
                    {"name": HTTP_PORT_NAME, "port": 80, "target_port": HTTP_PORT_NAME, "protocol": "TCP",
                     "app_protocol": "http"},
                    {"name": METRICS_PORT_NAME, "port": self.args.plan.spec.metrics_port,
                     "target_port": METRICS_PORT_NAME, "protocol": "TCP", "app_protocol": "http"},
                ],
            },
            opts=self.child_opts(),
        )

    def _deployment(
        self,
        name: str,
        workload: Workload,
        *,
        service_account: k8s.core.v1.ServiceAccount,
        config_map: k8s.core.v1.ConfigMap,
        config_data: dict[str, str],
        secret_names: list[Any],
    ) -> k8s.apps.v1.Deployment:
        # The stable track keeps the plain names, so a service that never used canary or
        # colours has the same URN and object name it always had.
        suffix = deployment_name("", workload.track)
        skips = pinned_by_tag_skips(workload.image)
        if secret_names:
            skips.append(SECRETS_AS_ENVIRONMENT)
        return k8s.apps.v1.Deployment(
            f"{name}{suffix}-deployment",
            metadata=self._meta(f"{self.args.plan.name}{suffix}", skips=skips),
            spec=self._deployment_spec(workload, service_account, config_map, config_data, secret_names),
            # The HPA owns the replica count once the Deployment exists. Pulumi waits for the
            # rollout a little past Kubernetes' own deadline, so the deadline is what fails it.
            opts=self.child_opts(ignore_changes=["spec.replicas"], custom_timeouts=self.rollout_timeouts,
                                 depends_on=[r for binding in self.args.bindings for r in binding.ready]),
        )

    @property
    def rollout_deadline_seconds(self) -> int:
        return int(duration_seconds(self.args.environment.rollout_deadline))

    @property
    def rollout_timeouts(self) -> pulumi.CustomTimeouts:
        wait = f"{self.rollout_deadline_seconds + 60}s"
        return pulumi.CustomTimeouts(create=wait, update=wait)

    def _deployment_spec(
        self,
        workload: Workload,
        service_account: k8s.core.v1.ServiceAccount,
        config_map: k8s.core.v1.ConfigMap,
        config_data: dict[str, str],
        secret_names: list[Any],
    ) -> DeploymentSpecArgsDict:
        plan = self.args.plan
        # A changed ConfigMap must roll the pods: the checksum makes it a pod template change.
        config_checksum = hashlib.sha256(json.dumps(config_data, sort_keys=True).encode()).hexdigest()
        return {
            "replicas": workload.fixed_replicas or plan.replicas_min,
            "selector": {"match_labels": track_selector(plan.name, workload.track)},
            "min_ready_seconds": 10,
            "progress_deadline_seconds": self.rollout_deadline_seconds,
            "revision_history_limit": 5,
            "strategy": {
                "type": "RollingUpdate",
                # Zero downtime: a new pod must be ready before an old one goes.
                "rolling_update": {"max_unavailable": 0, "max_surge": plan.policy.max_surge},
            },
            "template": {
                "metadata": {
                    "labels": {**self.labels, TRACK: workload.track},
                    "annotations": {"checksum/config": config_checksum},
                },
                "spec": {
                    "service_account_name": service_account.metadata.name,
                    "automount_service_account_token": False,
                    "enable_service_links": False,
                    "priority_class_name": self.args.priority_class_name,
                    "termination_grace_period_seconds": plan.policy.termination_grace_seconds,
                    "security_context": pod_security_context(),
                    "topology_spread_constraints": [
                        self._spread("topology.kubernetes.io/zone"),
                        self._spread("kubernetes.io/hostname"),
                    ],
                    "containers": [self._container(workload, config_map, secret_names)],
                    "volumes": [{"name": "tmp", "empty_dir": {"size_limit": "256Mi"}}],
                },
            },
        }

    def _spread(self, topology_key: str) -> TopologySpreadConstraintArgsDict:
        return {
            "max_skew": 1,
            "topology_key": topology_key,
            # Prefer spreading, but never leave a pod pending for it (a small cluster has one zone).
            "when_unsatisfiable": "ScheduleAnyway",
            "label_selector": {"match_labels": selector(self.args.plan.name)},
            "match_label_keys": ["pod-template-hash"],
        }

    def _container(
        self, workload: Workload, config_map: k8s.core.v1.ConfigMap, secret_names: list[Any]
    ) -> ContainerArgsDict:
        plan = self.args.plan
        spec = plan.spec

        def probe(path: str, period: int, failures: int) -> ProbeArgsDict:
            return {
                "http_get": {"path": path, "port": HTTP_PORT_NAME},
                "period_seconds": period,
                "timeout_seconds": 3,
                "failure_threshold": failures,
            }

        return {
            "name": plan.name,
            "image": workload.image,
            "image_pull_policy": "Always",
            "ports": [
                {"name": HTTP_PORT_NAME, "container_port": spec.port, "protocol": "TCP"},
                {"name": METRICS_PORT_NAME, "container_port": spec.metrics_port, "protocol": "TCP"},
            ],
            "env_from": [
                {"config_map_ref": {"name": config_map.metadata.name}},
                *[EnvFromSourceArgsDict(secret_ref={"name": secret}) for secret in secret_names],
            ],
            "resources": {
                "requests": {"cpu": str(plan.cpu_request), "memory": str(plan.memory_request)},
                "limits": {"cpu": str(plan.cpu_limit), "memory": str(plan.memory_limit)},
            },
            # Startup allows a slow first start (5 minutes) without a lenient liveness probe.
            "startup_probe": probe(spec.health_path, period=5, failures=60),
            "liveness_probe": probe(spec.health_path, period=10, failures=3),
            "readiness_probe": probe(spec.ready_path, period=5, failures=3),
            # Keep serving while endpoints and load balancers stop routing to this pod.
            "lifecycle": {"pre_stop": {"sleep": {"seconds": 5}}},
            "security_context": container_security_context(),
            "volume_mounts": [{"name": "tmp", "mount_path": "/tmp"}],
        }

    # --- scaling and availability --------------------------------------------------------

    def _autoscaler(self, name: str, deployment: k8s.apps.v1.Deployment) -> None:
        plan = self.args.plan

        def utilization(resource: str, target: int) -> MetricSpecArgsDict:
            return {"type": "Resource", "resource": {"name": resource, "target": {
                "type": "Utilization", "average_utilization": target}}}

        k8s.autoscaling.v2.HorizontalPodAutoscaler(
            f"{name}-hpa",
            metadata=self._meta(plan.name),
            spec={
                "scale_target_ref": {"api_version": "apps/v1", "kind": "Deployment", "name": deployment.metadata.name},
                "min_replicas": plan.replicas_min,
                "max_replicas": plan.replicas_max,
                "metrics": [
                    utilization("cpu", plan.target_cpu_utilization),
                    utilization("memory", plan.target_memory_utilization),
                ],
                # Scale up fast, down slowly: a brief dip must not drop capacity before the next peak.
                "behavior": {
                    "scale_down": {"stabilization_window_seconds": 300,
                                   "policies": [{"type": "Percent", "value": 50, "period_seconds": 60}]},
                    "scale_up": {"stabilization_window_seconds": 0,
                                 "policies": [{"type": "Percent", "value": 100, "period_seconds": 30}]},
                },
            },
            opts=self.child_opts(),
        )

    def _disruption_budget(self, name: str) -> None:
        plan = self.args.plan
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb",
            metadata=self._meta(plan.name),
            spec={
                # maxUnavailable (never minAvailable = replicas) keeps node drains possible.
                "max_unavailable": plan.policy.pdb_max_unavailable,
                "selector": {"match_labels": selector(plan.name)},
                # A crash-looping pod must not block a drain.
                "unhealthy_pod_eviction_policy": "AlwaysAllow",
            },
            opts=self.child_opts(),
        )

    # --- reachability ----------------------------------------------------------------------

    def _network_policy(self, name: str) -> None:
        plan, args = self.args.plan, self.args
        spec = plan.spec
        ingress: list[NetworkPolicyIngressRuleArgsDict] = [{
            "from_": [{
                "namespace_selector": {"match_labels": {"kubernetes.io/metadata.name": args.monitoring.namespace}},
                "pod_selector": {"match_labels": dict(args.monitoring.prometheus_pod_labels)},
            }],
            "ports": [{"protocol": "TCP", "port": METRICS_PORT_NAME}],
        }]
        if spec.public:
            ingress.append({
                "from_": [{"namespace_selector": {"match_labels": {
                    "kubernetes.io/metadata.name": args.environment.ingress.controller_namespace}}}],
                "ports": [{"protocol": "TCP", "port": HTTP_PORT_NAME}],
            })
        if args.callers:
            ingress.append({
                "from_": [{"pod_selector": {"match_expressions": [
                    {"key": "app.kubernetes.io/name", "operator": "In", "values": list(args.callers)}]}}],
                "ports": [{"protocol": "TCP", "port": HTTP_PORT_NAME}],
            })
        egress: list[NetworkPolicyEgressRuleArgsDict] = [dns_egress_rule()]
        egress += [
            {"to": [{"pod_selector": {"match_labels": selector(peer.name)}}],
             "ports": [{"protocol": "TCP", "port": peer.port}]}
            for peer in args.callees
        ]
        for binding in args.bindings:
            egress += binding.egress
        if spec.external_egress:
            egress.append({
                "to": [{"ip_block": {"cidr": "0.0.0.0/0", "except_": PRIVATE_RANGES}}],
                "ports": [{"protocol": "TCP", "port": 443}],
            })
        k8s.networking.v1.NetworkPolicy(
            f"{name}-network-policy",
            metadata=self._meta(plan.name),
            spec={
                "pod_selector": {"match_labels": selector(plan.name)},
                "policy_types": ["Ingress", "Egress"],
                "ingress": ingress,
                "egress": egress,
            },
            opts=self.child_opts(),
        )

    def _ingress(self, name: str, service: k8s.core.v1.Service) -> None:
        args = self.args
        spec = self._ingress_spec(service)
        spec["tls"] = [{"hosts": [args.host], "secret_name": tls_secret_name(args.plan.name)}]
        k8s.networking.v1.Ingress(
            f"{name}-ingress",
            metadata=self._meta(args.plan.name, annotations={
                "cert-manager.io/cluster-issuer": args.environment.tls.cluster_issuer,
                "nginx.ingress.kubernetes.io/ssl-redirect": "true",
                "nginx.ingress.kubernetes.io/force-ssl-redirect": "true",
            }),
            spec=spec,
            opts=self.child_opts(),
        )

    def _canary_ingress(self, name: str, canary: k8s.core.v1.Service) -> None:
        """ingress-nginx canary: same host, ``weight`` % of requests to the canary Service.

        No TLS block of its own: ingress-nginx serves the host's certificate from the main
        Ingress, and a second Certificate for the same secret would fight the first.
        """
        k8s.networking.v1.Ingress(
            f"{name}-canary-ingress",
            metadata=self._meta(f"{self.args.plan.name}-canary", annotations={
                "nginx.ingress.kubernetes.io/canary": "true",
                "nginx.ingress.kubernetes.io/canary-weight": str(self.args.plan.canary_weight),
            }),
            spec=self._ingress_spec(canary),
            opts=self.child_opts(),
        )

    def _ingress_spec(self, backend: k8s.core.v1.Service) -> IngressSpecArgsDict:
        """The service's host, every path, to ``backend``'s http port."""
        return {
            "ingress_class_name": self.args.environment.ingress.class_name,
            "rules": [{
                "host": self.args.host,
                "http": {"paths": [{
                    "path": "/",
                    "path_type": "Prefix",
                    "backend": {"service": {"name": backend.metadata.name, "port": {"name": HTTP_PORT_NAME}}},
                }]},
            }],
        }

    def _service_monitor(self, name: str, services: list[k8s.core.v1.Service]) -> None:
        plan, args = self.args.plan, self.args
        monitor_labels = {**self.labels, **args.monitoring.selector_labels}
        k8s.apiextensions.CustomResource(
            f"{name}-service-monitor",
            api_version="monitoring.coreos.com/v1",
            kind="ServiceMonitor",
            metadata=metadata(plan.name, args.namespace, monitor_labels),
            # CustomResource specs are passed through as written: camelCase.
            spec={
                "selector": {"matchLabels": selector(plan.name)},
                "namespaceSelector": {"matchNames": [args.namespace]},
                # job = the service's name for every track, so alerts see canaries as the service;
                # the tier and the track are copied onto every series for grouping and comparison.
                "jobLabel": "app.kubernetes.io/name",
                "targetLabels": ["codai.io/tier"],
                "podTargetLabels": [TRACK],
                "endpoints": [{
                    "port": METRICS_PORT_NAME,
                    "path": plan.spec.metrics_path,
                    "scheme": "http",
                    "interval": plan.policy.scrape_interval,
                    "scrapeTimeout": plan.policy.scrape_timeout,
                }],
            },
            opts=self.child_opts(depends_on=services),
        )


def _upper_snake(flag: str) -> str:
    """``newCheckout`` -> ``NEW_CHECKOUT``."""
    return "".join(f"_{c}" if c.isupper() else c.upper() for c in flag)


def _flag_text(value: bool | int | str) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)

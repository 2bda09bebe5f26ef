"""One Codai service: everything it needs to run, scale, be reached and be watched.

:class:`CodaiService` only composes; each module here builds one part (configuration,
workload, exposure, scaling, network policy, service monitor) into the same component.
"""

from __future__ import annotations

import pulumi

from components.base import PlatformComponent
from components.labels import labels
from components.service import configuration, exposure, scaling, workload
from components.service.args import Peer, ServiceArgs
from components.service.names import HTTP_PORT_NAME
from components.service.network_policy import network_policy
from components.service.scope import ServiceScope
from components.service.service_monitor import monitor_service
from settings.rollout import RolloutStrategy

__all__ = [
    "HTTP_PORT_NAME",
    "CodaiService",
    "Peer",
    "ServiceArgs",
]


class CodaiService(PlatformComponent):
    """ServiceAccount, ConfigMap, Secret, Deployment, Service, HPA, PDB, NetworkPolicy, Ingress, ServiceMonitor."""

    url: str | None

    def __init__(self, name: str, args: ServiceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("codai:platform:Service", name, opts)
        self.args = args
        plan = args.plan
        self.labels = labels(plan.name, "app", plan.tier.value)
        self.url = args.url
        scope = ServiceScope(self, name, args, self.labels)

        service_account = workload.service_account(scope)
        config_data = configuration.config_data(scope)
        config_map = configuration.config_map(scope, config_data)
        pods = workload.PodInputs(service_account, config_map, config_data, configuration.secret_names(scope))
        self.deployments = workload.deployments(scope, pods)
        service = exposure.live_service(scope)
        side_services = exposure.side_services(scope)
        deployment = self.deployments[plan.live.track]
        scaling.autoscaler(scope, deployment)
        scaling.disruption_budget(scope)
        network_policy(scope)
        if plan.spec.public:
            exposure.ingress(scope, service)
            if plan.strategy == RolloutStrategy.CANARY:
                exposure.canary_ingress(scope, side_services["canary"])
        monitor_service(scope, [service, *side_services.values()])
        self.register_outputs({"url": self.url, "deployment": deployment.metadata.name})

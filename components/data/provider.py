"""The base of the PostgreSQL and Redis components: what makes one a :class:`DependencyProvider`.

Its arguments (:class:`DataArgs`), its names, labels and metadata, the credentials it generates
(one password and one Secret per client), and the Secret name and egress rule it hands each
client. The objects of the in-cluster server are built in components/data/server.py, those of
the jobs in components/data/jobs.py; a subclass says what differs and calls them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
from pulumi_kubernetes.meta.v1 import ObjectMetaArgsDict
from pulumi_kubernetes.networking.v1 import NetworkPolicyEgressRuleArgsDict

from components.base import PlatformComponent
from components.contracts import DependencyBinding, HealthProbe
from components.data.pod_parts import Port
from components.labels import COMPONENT, DATA_TIER, labels, metadata, selector
from components.network import KubernetesApi, ip_block_egress
from components.scraping import Scraping
from components.security import ScannerException
from services.model import Dependency, ServiceSpec
from settings.connection_budget import Budget
from settings.data import ExternalServer, ServerSettings, ServerSizing
from settings.defaults import SizingProfile

#: Length of every generated password: letters and digits only, so URLs need no escaping.
PASSWORD_LENGTH = 32


#: The keys of a client's Secret, from its catalog entry and its generated password.
ClientSecretData = Callable[[ServiceSpec, pulumi.Output[str]], Mapping[str, pulumi.Input[str]]]


#: The settings of one kind of server (PostgresSettings, RedisSettings).
ServerSettingsT = TypeVar("ServerSettingsT", bound=ServerSettings)


@dataclass(frozen=True, kw_only=True)
class DataArgs(Generic[ServerSettingsT]):
    """What a data component is handed by the composition root: its server's settings and where it runs."""

    settings: ServerSettingsT

    #: Namespace of the platform: the server, its Secrets and its clients live there.
    namespace: str
    #: Services that declared the dependency (``CATALOG.using(...)``); each gets its own credentials.
    clients: Sequence[ServiceSpec]
    #: The stack's sizing profile: the server's row of the sizing table.
    sizing: SizingProfile
    #: Pulumi ``protect`` on the server and its volumes, and no voluntary eviction of a single server.
    protect_stateful: bool
    scraping: Scraping
    #: PriorityClass of the server pod; the cluster default when unset.
    priority_class_name: str | None = None
    #: Where pods that call the Kubernetes API reach it (CloudNativePG's instances and PgBouncers).
    kubernetes_api: KubernetesApi = field(default_factory=KubernetesApi)
    #: PostgreSQL in the cluster: the stack's fitted connection budget, which sizes each tier's Pooler
    #: (``StackPlan.connection_budget``); None for Redis and a managed server.
    connection_budget: Budget | None = None


class DataComponent(PlatformComponent, Generic[ServerSettingsT]):
    """Base of the PostgreSQL and Redis components; implements :class:`DependencyProvider`.

    A subclass names its kind (the class attributes below) and builds its objects in
    :meth:`build`, which the constructor calls once the shared state is set.
    """

    #: The Pulumi type of the component: part of every child's URN.
    type_token: str
    #: How its exporter says the server is reachable (the data tier's probe, Down alert and panel); it also
    #: names the dependency served, so the two cannot disagree.
    health: HealthProbe
    #: ``database`` or ``cache``: the ``app.kubernetes.io/component`` of the server pod.
    role: str
    port: Port
    metrics_port: Port

    def __init__(self, name: str, args: DataArgs[ServerSettingsT], opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(self.type_token, name, opts)
        self.name = name
        self.args = args
        self.settings: ServerSettingsT = args.settings
        self.sizing: ServerSizing = args.settings.sizing(args.sizing)
        self.clients = sorted(args.clients, key=lambda spec: spec.name)
        #: Each client's Secret, by service name.
        self.secrets: dict[str, k8s.core.v1.Secret] = {}
        #: Every Secret made so far: the server's pod mounts some of them by name.
        self.made_secrets: list[k8s.core.v1.Secret] = []
        self.service_account: k8s.core.v1.ServiceAccount | None = None
        #: The in-cluster server, and the Job that creates the clients' logins (set by each subclass).
        self.statefulset: k8s.apps.v1.StatefulSet | None = None
        self.bootstrap: k8s.batch.v1.Job | None = None
        #: Other objects a client waits for (the CloudNativePG Cluster, its Databases and Poolers).
        self.server_objects: list[pulumi.Resource] = []
        self.build()

    def build(self) -> None:
        """Creates the component's objects and registers its outputs."""
        raise NotImplementedError

    @property
    def dependency(self) -> Dependency:
        return self.health.dependency

    # --- names, labels, metadata ------------------------------------------------------------

    @property
    def namespace(self) -> str:
        return self.args.namespace

    @property
    def host(self) -> str:
        """Where clients connect: the external server, or the client Service's cluster DNS name."""
        external = self.external
        return external.host if external else f"{self.name}.{self.namespace}.svc"

    @property
    def external(self) -> ExternalServer | None:
        return self.settings.external_server

    def labels(self, component: str) -> dict[str, str]:
        return labels(self.name, component, DATA_TIER)

    def pod_selector(self, component: str) -> dict[str, str]:
        """Selects this component's pods of one kind (server, bootstrap, backup) and no other."""
        return {**selector(self.name), COMPONENT: component}

    def meta(self, object_name: pulumi.Input[str], component: str, *, skips: Sequence[ScannerException] = (),
             annotations: dict[str, str] | None = None) -> ObjectMetaArgsDict:
        return metadata(object_name, self.namespace, self.labels(component), annotations, skips)  # type: ignore[arg-type]

    def ensure_service_account(self) -> pulumi.Output[str]:
        """The pods' own ServiceAccount (server and jobs alike), without an API token: nothing here
        calls the Kubernetes API. Made by the first pod that asks for it.
        """
        if self.service_account is None:
            self.service_account = k8s.core.v1.ServiceAccount(
                f"{self.name}-service-account",
                metadata=self.meta(self.name, "service-account"),
                automount_service_account_token=False,
                opts=self.child_opts(),
            )
        return self.service_account.metadata.name

    def stateful_options(self) -> dict[str, Any]:
        """A volume outlives the stack: never deleted by Pulumi, and protected where the stack says so."""
        return {"protect": self.args.protect_stateful, "retain_on_delete": True}

    # --- credentials ---------------------------------------------------------------------------

    def password(self, purpose: str) -> random.RandomPassword:
        return random.RandomPassword(
            f"{self.name}-{purpose}-password",
            length=PASSWORD_LENGTH,
            special=False,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def secret(self, resource: str, object_name: str, component: str,
               data: Mapping[str, pulumi.Input[str]]) -> k8s.core.v1.Secret:
        secret = k8s.core.v1.Secret(
            f"{self.name}-{resource}",
            metadata=self.meta(object_name, component),
            type="Opaque",
            string_data=dict(data),
            opts=self.child_opts(),
        )
        self.made_secrets.append(secret)
        return secret

    def client_secrets(self, data: ClientSecretData) -> dict[str, pulumi.Output[str]]:
        """One password and one Secret ``<service>-<dependency>`` per client; returns the passwords.

        ``data(service, password)`` gives the Secret's keys.
        """
        passwords: dict[str, pulumi.Output[str]] = {}
        for spec in self.clients:
            # `client-` keeps a service's resource names apart from the component's own (a service
            # may well be called `admin` or `monitor`).
            password = self.password(f"client-{spec.name}").result
            passwords[spec.name] = password
            self.secrets[spec.name] = self.secret(
                f"client-{spec.name}-secret", self.client_secret_name(spec.name), "credentials", data(spec, password))
        return passwords

    def client_secret_name(self, service: str) -> str:
        return f"{service}-{self.dependency.value}"

    # --- DependencyProvider --------------------------------------------------------------------

    def binding_for(self, service: str) -> DependencyBinding:
        if service not in self.secrets:
            raise KeyError(f"{service!r} does not declare {self.dependency.value}")
        ready = [self.secrets[service], *(r for r in (self.statefulset, self.bootstrap) if r is not None),
                 *self.server_objects]
        return DependencyBinding(self.dependency, self.client_secret_name(service), self.client_egress(service),
                                 ready)

    def client_egress(self, service: str | None = None) -> list[NetworkPolicyEgressRuleArgsDict]:
        """What a client's NetworkPolicy must allow: the server pods, or the external server's ranges.
        ``service``: the client, where it matters which pods it reaches (None: this component's jobs).
        """
        del service  # every client of a server reaches the same pods
        external = self.external
        if external:
            return [ip_block_egress(external.egress_cidrs, self.server_port)]
        return [{"to": [{"pod_selector": {"match_labels": self.pod_selector(self.role)}}],
                 "ports": [{"protocol": "TCP", "port": port} for port in self.client_ports()]}]

    def client_ports(self) -> list[int]:
        """The ports a client opens on the in-cluster server pods."""
        return [self.port.number]

    @property
    def server_port(self) -> int:
        external = self.external
        return external.port if external else self.port.number


#: Any data component, for the builders that do not depend on which server it deploys.
AnyDataComponent = DataComponent[Any]

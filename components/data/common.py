"""What PostgreSQL and Redis components share: credentials, Services, the StatefulSet shape,
disruption budget, NetworkPolicies, the ServiceMonitor and the pods of their jobs.

A subclass says what differs (ports, containers, configuration) and calls these builders;
nothing here knows which server it is deploying.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
from pulumi_kubernetes.apps.v1 import StatefulSetSpecArgsDict
from pulumi_kubernetes.batch.v1 import JobSpecArgsDict
from pulumi_kubernetes.core.v1 import (
    ContainerArgsDict,
    EnvVarArgsDict,
    PersistentVolumeClaimSpecArgsDict,
    PodTemplateSpecArgsDict,
    ProbeArgsDict,
    ServicePortArgsDict,
    ServiceSpecArgsDict,
    VolumeArgsDict,
    VolumeMountArgsDict,
)
from pulumi_kubernetes.meta.v1 import ObjectMetaArgsDict
from pulumi_kubernetes.networking.v1 import (
    NetworkPolicyEgressRuleArgsDict,
    NetworkPolicyIngressRuleArgsDict,
    NetworkPolicyPeerArgsDict,
    NetworkPolicySpecArgsDict,
)

from components.base import PlatformComponent
from components.contracts import DependencyBinding
from components.data import backup
from components.labels import COMPONENT, DATA_TIER, NAME, labels, metadata, selector
from components.network import ip_block_egress
from components.pod import hardened_container, hardened_pod_spec
from components.scraping import (
    METRICS_PORT_NAME,
    MonitoredWorkload,
    ScrapeEndpoint,
    Scraping,
    prometheus_scrape_rule,
    service_monitor,
)
from components.security import (
    SECRETS_AS_ENVIRONMENT,
    ScannerException,
    pinned_by_tag_skips,
)
from services.model import Dependency, ServiceSpec
from settings.data import ContainerResources, ExternalServer, SecretReference, ServerSettings, ServerSizing
from settings.defaults import SizingProfile
from settings.quantities import Memory

#: Length of every generated password: letters and digits only, so URLs need no escaping.
PASSWORD_LENGTH = 32
#: Where jobs find the administrator's credentials (files, never environment variables).
ADMIN_DIR = "/run/codai/admin"
#: How long a job may take before Kubernetes stops it.
BOOTSTRAP_DEADLINE_SECONDS = 900


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


@dataclass(frozen=True)
class Port:
    name: str
    number: int


@dataclass
class Pod:
    """Containers and volumes of a pod being assembled."""

    containers: list[ContainerArgsDict] = field(default_factory=list)
    init_containers: list[ContainerArgsDict] = field(default_factory=list)
    volumes: list[VolumeArgsDict] = field(default_factory=list)


def digest(*parts: pulumi.Input[str]) -> pulumi.Output[str]:
    """A short content hash of ``parts``, for names and checksum annotations.

    The parts may hold secrets (passwords, ACL files); ten hex digits of a SHA-256 over them
    reveal nothing usable, and a secret-marked name would be redacted everywhere it shows.
    """
    return pulumi.Output.unsecret(pulumi.Output.all(*parts).apply(lambda values: plain_digest(*values)))


def plain_digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:10]


def container(
    name: str,
    image: str,
    size: ContainerResources,
    *,
    command: list[str] | None = None,
    args: list[str] | None = None,
    env: Mapping[str, str] | None = None,
    secret_env: list[EnvVarArgsDict] | None = None,
    env_from_secrets: Sequence[str] = (),
    ports: Sequence[Port] = (),
    mounts: Sequence[VolumeMountArgsDict] = (),
    probes: Mapping[str, ProbeArgsDict] | None = None,
) -> ContainerArgsDict:
    """A hardened container (components/pod.py) with what a server, exporter or job adds."""
    spec = hardened_container(name, image, size, mounts)
    if command:
        spec["command"] = command
    if args:
        spec["args"] = args
    variables: list[EnvVarArgsDict] = [{"name": key, "value": value} for key, value in (env or {}).items()]
    variables += secret_env or []
    if variables:
        spec["env"] = variables
    if env_from_secrets:
        spec["env_from"] = [{"secret_ref": {"name": name}} for name in env_from_secrets]
    if ports:
        spec["ports"] = [{"name": p.name, "container_port": p.number, "protocol": "TCP"} for p in ports]
    for kind, probe in (probes or {}).items():
        spec[f"{kind}_probe"] = probe  # type: ignore[literal-required]
    return spec


def exec_probe(command: list[str], period: int, failures: int, timeout: int = 5) -> ProbeArgsDict:
    return {"exec_": {"command": command}, "period_seconds": period, "timeout_seconds": timeout,
            "failure_threshold": failures}


def http_probe(port: str, period: int, failures: int) -> ProbeArgsDict:
    return {"http_get": {"path": "/", "port": port}, "period_seconds": period, "timeout_seconds": 5,
            "failure_threshold": failures}


def exporter_probes() -> dict[str, ProbeArgsDict]:
    """The exporters serve a landing page at ``/``: cheap, and up only when the exporter is."""
    return {"liveness": http_probe(METRICS_PORT_NAME, 20, 3), "readiness": http_probe(METRICS_PORT_NAME, 10, 3)}


def secret_volume(name: str, secret: pulumi.Input[str], items: Mapping[str, str]) -> VolumeArgsDict:
    """A Secret as files (``key -> file name``), readable by the pod's group only."""
    return {"name": name, "secret": {"secret_name": secret, "default_mode": 0o440,
                                     "items": [{"key": key, "path": path} for key, path in items.items()]}}


def config_volume(name: str, config_map: pulumi.Input[str]) -> VolumeArgsDict:
    return {"name": name, "config_map": {"name": config_map, "default_mode": 0o444}}


def volume_claim(size: Memory, storage_class: str | None) -> PersistentVolumeClaimSpecArgsDict:
    """A volume of one node at a time; the cluster's default StorageClass unless one is named."""
    claim: PersistentVolumeClaimSpecArgsDict = {
        "access_modes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": str(size)}},
    }
    if storage_class:
        claim["storage_class_name"] = storage_class
    return claim


class DataComponent(PlatformComponent):
    """Base of the PostgreSQL and Redis components; implements :class:`DependencyProvider`."""

    dependency: Dependency
    #: ``database`` or ``cache``: the ``app.kubernetes.io/component`` of the server pod.
    role: str
    port: Port
    metrics_port: Port

    def __init__(
        self,
        type_token: str,
        name: str,
        args: DataArgs[ServerSettingsT],
        *,
        opts: pulumi.ResourceOptions | None = None,
        depends_on: Sequence[pulumi.Resource] = (),
    ) -> None:
        super().__init__(type_token, name, opts, depends_on)
        self.name = name
        self.args = args
        self.settings: ServerSettings = args.settings
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
        ready = [self.secrets[service], *(r for r in (self.statefulset, self.bootstrap) if r is not None)]
        return DependencyBinding(self.dependency, self.client_secret_name(service), self.client_egress(), ready)

    def client_egress(self) -> list[NetworkPolicyEgressRuleArgsDict]:
        """What a client's NetworkPolicy must allow: the server pods, or the external server's ranges."""
        external = self.external
        if external:
            return [ip_block_egress(external.egress_cidrs, self.server_port)]
        return [{"to": [{"pod_selector": {"match_labels": self.pod_selector(self.role)}}],
                 "ports": [{"protocol": "TCP", "port": self.port.number}]}]

    @property
    def server_port(self) -> int:
        external = self.external
        return external.port if external else self.port.number

    # --- the in-cluster server -------------------------------------------------------------------

    def ensure_service_account(self) -> pulumi.Output[str]:
        """The pods' own ServiceAccount, without an API token: nothing here calls the Kubernetes API."""
        if self.service_account is None:
            self.service_account = k8s.core.v1.ServiceAccount(
                f"{self.name}-service-account",
                metadata=self.meta(self.name, "service-account"),
                automount_service_account_token=False,
                opts=self.child_opts(),
            )
        return self.service_account.metadata.name

    def server_services(self) -> None:
        """Client Service (``<name>``), headless Service for the StatefulSet, metrics Service."""
        server = self.pod_selector(self.role)

        def ports(port: Port) -> list[ServicePortArgsDict]:
            return [{"name": port.name, "port": port.number, "target_port": port.name, "protocol": "TCP"}]

        services: list[tuple[str, str, str, ServiceSpecArgsDict]] = [
            ("service", self.name, self.role, {"type": "ClusterIP", "selector": server, "ports": ports(self.port)}),
            # Stable per-pod DNS names, published before readiness so a starting pod can be found.
            ("headless-service", self.headless_name, self.role, {
                "cluster_ip": "None", "publish_not_ready_addresses": True, "selector": server,
                "ports": ports(self.port)}),
            ("metrics-service", f"{self.name}-metrics", METRICS_PORT_NAME,
             {"type": "ClusterIP", "selector": server, "ports": ports(self.metrics_port)}),
        ]
        for resource, object_name, component, spec in services:
            k8s.core.v1.Service(f"{self.name}-{resource}", metadata=self.meta(object_name, component), spec=spec,
                                opts=self.child_opts())

    @property
    def headless_name(self) -> str:
        return f"{self.name}-headless"

    def stateful_set(self, pod: Pod, *, checksum: pulumi.Input[str], grace_seconds: int,
                     skips: Sequence[ScannerException]) -> k8s.apps.v1.StatefulSet:
        """One replica with its volume. Only data-independent fields can change in place: the
        selector, service name and volume claim template are fixed at creation, and built
        from names and constants only, so changing an unrelated setting never replaces it.
        """
        claim = volume_claim(self.sizing.storage, self.settings.storage_class)
        pod_spec = hardened_pod_spec(self.ensure_service_account(), pod.containers, tmp_size="256Mi",
                                     volumes=pod.volumes, walk_volumes_on_start=False)
        pod_spec["termination_grace_period_seconds"] = grace_seconds
        if self.args.priority_class_name:
            pod_spec["priority_class_name"] = self.args.priority_class_name
        template: PodTemplateSpecArgsDict = {
            "metadata": {"labels": self.labels(self.role), "annotations": {"checksum/config": checksum}},
            "spec": pod_spec,
        }
        spec: StatefulSetSpecArgsDict = {
            "replicas": 1,
            "service_name": self.headless_name,
            "selector": {"match_labels": self.pod_selector(self.role)},
            "pod_management_policy": "OrderedReady",
            "update_strategy": {"type": "RollingUpdate"},
            # Deleting or scaling the StatefulSet keeps the volume (the default would too, stated here).
            "persistent_volume_claim_retention_policy": {"when_deleted": "Retain", "when_scaled": "Retain"},
            "volume_claim_templates": [{"metadata": {"name": "data", "labels": self.labels(self.role)},
                                        "spec": claim}],
            "template": template,
        }
        statefulset = k8s.apps.v1.StatefulSet(
            f"{self.name}-statefulset",
            metadata=self.meta(self.name, self.role, skips=skips),
            spec=spec,
            # The claim template cannot change on a live StatefulSet (a change would mean replacing it):
            # a new storageSize applies to new volumes, and a live volume grows by expanding its
            # claim (docs/data.md). The server itself is not retained on delete: its volumes are
            # (persistentVolumeClaimRetentionPolicy), so removing it stops it and keeps the data.
            opts=self.child_opts(ignore_changes=["spec.volumeClaimTemplates"], depends_on=list(self.made_secrets),
                                 protect=self.args.protect_stateful),
        )
        self.disruption_budget()
        return statefulset

    def stateful_options(self) -> dict[str, Any]:
        """A volume outlives the stack: never deleted by Pulumi, and protected where the stack says so."""
        return {"protect": self.args.protect_stateful, "retain_on_delete": True}

    def disruption_budget(self) -> None:
        """A single server: in a protected stack a voluntary eviction waits for a planned restart
        (docs/data.md); elsewhere a node drain may move it.
        """
        k8s.policy.v1.PodDisruptionBudget(
            f"{self.name}-pdb",
            metadata=self.meta(self.name, self.role),
            spec={
                "max_unavailable": 0 if self.args.protect_stateful else 1,
                "selector": {"match_labels": self.pod_selector(self.role)},
            },
            opts=self.child_opts(),
        )

    def server_network_policy(self, job_components: Sequence[str]) -> None:
        """Clients (and this component's jobs) on the server port; Prometheus on the exporter's only."""
        clients: list[NetworkPolicyPeerArgsDict] = [
            {"pod_selector": {"match_expressions": [
                {"key": NAME, "operator": "In", "values": [spec.name for spec in self.clients]}]}},
        ] if self.clients else []
        clients += [{"pod_selector": {"match_labels": self.pod_selector(job)}} for job in job_components]
        ingress: list[NetworkPolicyIngressRuleArgsDict] = [
            prometheus_scrape_rule(self.args.scraping, self.metrics_port.number)]
        if clients:  # never an empty `from`: it would admit every source
            ingress.insert(0, {"from_": clients, "ports": [{"protocol": "TCP", "port": self.port.number}]})
        spec: NetworkPolicySpecArgsDict = {
            "pod_selector": {"match_labels": self.pod_selector(self.role)},
            # No egress rule: the server opens no connection (DNS has its namespace-wide policy).
            "policy_types": ["Ingress", "Egress"],
            "ingress": ingress,
        }
        k8s.networking.v1.NetworkPolicy(
            f"{self.name}-network-policy",
            metadata=self.meta(self.name, "network-policy"),
            spec=spec,
            opts=self.child_opts(),
        )

    def job_network_policy(self, component: str, extra_egress: Sequence[NetworkPolicyEgressRuleArgsDict] = ()) -> None:
        """A job's pods reach the server (like a client), plus ``extra_egress``; nothing reaches them."""
        k8s.networking.v1.NetworkPolicy(
            f"{self.name}-{component}-network-policy",
            metadata=self.meta(f"{self.name}-{component}", "network-policy"),
            spec={
                "pod_selector": {"match_labels": self.pod_selector(component)},
                "policy_types": ["Ingress", "Egress"],
                "egress": [*self.client_egress(), *extra_egress],
            },
            opts=self.child_opts(),
        )

    def service_monitor(self) -> None:
        workload = MonitoredWorkload(self.name, self.namespace, self.labels(METRICS_PORT_NAME),
                                     self.pod_selector(METRICS_PORT_NAME))
        service_monitor(f"{self.name}-service-monitor", workload, ScrapeEndpoint(), self.args.scraping,
                        self.child_opts())

    # --- jobs --------------------------------------------------------------------------------------

    def scripts_config_map(self, *names: str) -> k8s.core.v1.ConfigMap:
        """The jobs' scripts (components/data/scripts), mounted at ``/scripts`` by each job."""
        return k8s.core.v1.ConfigMap(
            f"{self.name}-scripts",
            metadata=self.meta(f"{self.name}-scripts", "scripts"),
            data=backup.scripts(*names),
            opts=self.child_opts(),
        )

    @staticmethod
    def admin_files(admin: SecretReference) -> tuple[VolumeArgsDict, VolumeMountArgsDict]:
        """The administrator's Secret as ``/run/codai/admin/username`` and ``.../password``."""
        volume = secret_volume("admin", admin.name, {admin.username_key: "username", admin.password_key: "password"})
        return volume, {"name": "admin", "mount_path": ADMIN_DIR, "read_only": True}

    def job_pod(self, component: str, pod: Pod) -> PodTemplateSpecArgsDict:
        """Pod template of a job: same restrictions as the server, never restarted in place."""
        spec = hardened_pod_spec(self.ensure_service_account(), pod.containers, tmp_size="64Mi",
                                 volumes=pod.volumes)
        spec["restart_policy"] = "Never"
        if pod.init_containers:
            spec["init_containers"] = pod.init_containers
        return {"metadata": {"labels": self.labels(component)}, "spec": spec}

    def bootstrap_job(self, pod: Pod, content: Sequence[pulumi.Input[str]], *,
                      depends_on: Sequence[pulumi.Resource], images: Sequence[str]) -> k8s.batch.v1.Job:
        """The job that creates or updates users (and databases), named after what it applies.

        A Job's pod template cannot change; a new name for new content makes Pulumi replace
        it, which runs the bootstrap again. Unchanged content keeps the finished Job as is.
        """
        job_name = digest(*content).apply(lambda value: f"{self.name}-bootstrap-{value}")
        skips = pinned_by_tag_skips(*images)
        spec: JobSpecArgsDict = {
            "backoff_limit": 6,
            "active_deadline_seconds": BOOTSTRAP_DEADLINE_SECONDS,
            "template": self.job_pod("bootstrap", pod),
        }
        return k8s.batch.v1.Job(
            f"{self.name}-bootstrap-job",
            metadata=self.meta(job_name, "bootstrap", skips=skips),
            spec=spec,
            opts=self.child_opts(depends_on=list(depends_on)),
        )

    def secret_env_skips(self, pod: Pod) -> list[ScannerException]:
        """The env-from-Secret exception, for pods that have such a variable (exporters, uploads)."""
        containers = cast(list[dict[str, Any]], [*pod.containers, *pod.init_containers])
        uses = any("env_from" in c or any("value_from" in e for e in c.get("env", [])) for c in containers)
        return [SECRETS_AS_ENVIRONMENT] if uses else []

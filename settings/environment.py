"""Environment-level settings: what a stack is (domain, registry, namespace, sizing...)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, IPvAnyNetwork, model_validator

from settings.base import (
    DnsLabel,
    Hostname,
    ImageTag,
    KubernetesVersion,
    PositiveDuration,
    Registry,
    SettingsModel,
    minor,
)
from settings.defaults import QUOTA, SizingProfile
from settings.quantities import Cpu, Memory


class IngressSettings(SettingsModel):
    class_name: DnsLabel = Field(default="nginx", description="IngressClass of the cluster's controller.")
    controller_namespace: DnsLabel = Field(
        default="ingress-nginx", description="Namespace of the ingress controller; the only source of public traffic."
    )


class TlsSettings(SettingsModel):
    cluster_issuer: DnsLabel = Field(
        default="letsencrypt-production", description="cert-manager ClusterIssuer that signs Ingress certificates."
    )


class KubernetesSettings(SettingsModel):
    min_version: KubernetesVersion = Field(
        default="1.30", description="Oldest supported minor; pins Pod Security Admission's enforce-version."
    )
    max_version: KubernetesVersion = Field(default="1.34", description="Newest minor the render is validated against.")
    api_server_cidrs: list[IPvAnyNetwork] = Field(
        default_factory=list, description="Address ranges of the Kubernetes API server, for the pods that call it "
        "(CloudNativePG's PostgreSQL instances and PgBouncers). When unset, those pods may reach any address on "
        "apiServerPorts; set it to narrow that."
    )
    api_server_ports: list[Annotated[int, Field(ge=1, le=65535)]] = Field(
        default_factory=lambda: [443, 6443], min_length=1, description="Ports of the API server as NetworkPolicies "
        "see them: the API server's own port behind the `kubernetes` Service (6443 on most clusters, 443 on some "
        "managed ones). 443 and 6443 when unset."
    )

    @model_validator(mode="after")
    def _ordered(self) -> KubernetesSettings:
        if minor(self.min_version) > minor(self.max_version):
            raise ValueError(f"minVersion {self.min_version} is newer than maxVersion {self.max_version}")
        return self


class QuotaSettings(SettingsModel):
    """Namespace ResourceQuota; unset values come from the sizing profile's row."""

    requests_cpu: Cpu | None = None
    requests_memory: Memory | None = None
    limits_memory: Memory | None = None
    requests_storage: Memory | None = None
    pods: int | None = Field(default=None, ge=1)
    persistent_volume_claims: int | None = Field(default=None, ge=0)

    def resolved(self, profile: SizingProfile) -> ResolvedQuota:
        defaults = QUOTA[profile]
        values = {key: getattr(self, key) if getattr(self, key) is not None else defaults[key] for key in defaults}
        return ResolvedQuota.model_validate(values)


class ResolvedQuota(SettingsModel):
    requests_cpu: Cpu
    requests_memory: Memory
    limits_memory: Memory
    requests_storage: Memory
    pods: int
    persistent_volume_claims: int


class Subject(SettingsModel):
    kind: Literal["Group", "User", "ServiceAccount"]
    name: str = Field(min_length=1, pattern=r"^\S+$", description="Group, user or ServiceAccount name (no spaces).")
    namespace: DnsLabel | None = Field(default=None, description="Required for a ServiceAccount.")

    @model_validator(mode="after")
    def _namespace_for_service_accounts(self) -> Subject:
        if self.kind == "ServiceAccount" and self.namespace is None:
            raise ValueError("a ServiceAccount subject needs a namespace")
        if self.kind != "ServiceAccount" and self.namespace is not None:
            raise ValueError(f"a {self.kind} subject takes no namespace (only a ServiceAccount does); remove it")
        return self


class RbacSettings(SettingsModel):
    deployers: list[Subject] = Field(
        default_factory=lambda: [Subject(kind="Group", name="codai:deployers")],
        description="Who may deploy (CI). Bound to the deployer Role.",
    )
    viewers: list[Subject] = Field(
        default_factory=lambda: [Subject(kind="Group", name="codai:viewers")],
        description="People with read-only access (no Secrets). Bound to the viewer Role.",
    )


class EnvironmentSettings(SettingsModel):
    domain: Hostname = Field(description="Public services are served at <service>.<domain>.")
    release: ImageTag = Field(description="Image tag every service runs unless a service pins its own.")
    image_registry: Registry = Field(default="ghcr.io/codai", description="Registry and path images are pulled from.")
    namespace: DnsLabel = Field(default="codai", description="Namespace holding the whole platform.")
    sizing: SizingProfile = Field(
        default=SizingProfile.HIGH_AVAILABILITY, description="Row of the sizing table (settings/defaults.py)."
    )
    protect_stateful: bool = Field(
        default=True, description="Pulumi `protect` on the namespace and stateful resources."
    )
    rollout_deadline: PositiveDuration = Field(
        default="5m",
        description="A rollout that makes no progress for this long has failed: Kubernetes stops it "
        "(`progressDeadlineSeconds`), the previous pods keep serving, and `pulumi up` fails.",
    )
    ingress: IngressSettings = Field(default_factory=IngressSettings)
    tls: TlsSettings = Field(default_factory=TlsSettings)
    kubernetes: KubernetesSettings = Field(default_factory=KubernetesSettings)
    quota: QuotaSettings = Field(default_factory=QuotaSettings)
    rbac: RbacSettings = Field(default_factory=RbacSettings)

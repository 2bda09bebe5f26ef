"""What the catalog knows about one service: identity, shape and relationships.

Sizing and per-environment settings are not here; they come from stack config
(see :mod:`settings`). An entry only states what is true of the service in every
environment.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from services.tiers import Tier

#: A DNS-1035 label: what Kubernetes accepts as a Service name.
_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,40}[a-z0-9])?$")

#: Written in ``callers`` to let every other service of the catalog call this one.
EVERY_SERVICE: Literal["*"] = "*"


class Dependency(StrEnum):
    """Shared platform dependencies a service may use."""

    POSTGRES = "postgres"
    REDIS = "redis"


class RedisUse(StrEnum):
    """What a service keeps in Redis, which decides whether Redis must make it durable."""

    #: Copies it can rebuild from elsewhere (PostgreSQL, an API): losing them costs only time.
    CACHE = "cache"
    #: Sessions, queues, locks, counters: losing them is a failure users see.
    STATE = "state"


class ServiceSpec(BaseModel):
    """One catalog entry."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="Kubernetes-safe name; also the host prefix and image repository.")
    tier: Tier
    description: str
    port: int = Field(default=8080, ge=1024, le=65535, description="HTTP port the container listens on.")
    metrics_port: int = Field(default=9464, ge=1024, le=65535, description="Port serving /metrics.")
    metrics_path: str = "/metrics"
    health_path: str = Field(default="/healthz", description="Liveness and startup probe path.")
    ready_path: str = Field(default="/readyz", description="Readiness probe path.")
    public: bool = Field(default=True, description="Exposed through the Ingress with TLS when true.")
    uses: tuple[Dependency, ...] = Field(default=(), description="Shared dependencies it connects to.")
    redis_use: RedisUse | None = Field(
        default=None, description="What it keeps in Redis; required exactly when it uses Redis.")
    callers: tuple[str, ...] | Literal["*"] = Field(
        default=(),
        description="Services allowed to call it inside the cluster; '*' for every service.",
    )
    external_egress: bool = Field(
        default=False,
        description="May open HTTPS connections outside the cluster (third-party APIs).",
    )
    generated_secrets: tuple[str, ...] = Field(
        default=(),
        description="Environment variable names of secrets generated for it (never in stack files).",
    )
    image_repository: str | None = Field(
        default=None, description="Repository under the stack's registry; the service name when unset."
    )

    @field_validator("name")
    @classmethod
    def _dns_label(cls, value: str) -> str:
        if not _DNS_LABEL.match(value):
            raise ValueError(f"{value!r} is not a lowercase DNS label (a-z, 0-9, '-')")
        return value

    @field_validator("metrics_path", "health_path", "ready_path")
    @classmethod
    def _absolute_path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"{value!r} must start with '/'")
        return value

    @field_validator("generated_secrets")
    @classmethod
    def _env_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for key in value:
            if not re.fullmatch(r"[A-Z][A-Z0-9_]*", key):
                raise ValueError(f"{key!r} is not an UPPER_SNAKE environment variable name")
        return value

    @model_validator(mode="after")
    def _redis_use_declared(self) -> ServiceSpec:
        uses_redis = Dependency.REDIS in self.uses
        if uses_redis and self.redis_use is None:
            raise ValueError(f"{self.name} uses Redis: say what it keeps there, redis_use=RedisUse.CACHE or STATE "
                             "(state makes Redis persist every write)")
        if not uses_redis and self.redis_use is not None:
            raise ValueError(f"{self.name} declares redis_use but does not use Redis")
        return self

    @property
    def repository(self) -> str:
        return self.image_repository or self.name

    def uses_dependency(self, dependency: Dependency) -> bool:
        return dependency in self.uses

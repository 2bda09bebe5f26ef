"""Stack-config validation, proven at every level and for every constraint.

The models are walked, not listed: every settings model reachable from ``StackSettings``
(nested, optional, dict values, list items) is a *position*, and every constraint the
models declare (bounds, patterns, Literal and enum types, AfterValidators, field and
model validators) is enumerated from their metadata. A new model is checked for unknown
keys without a line here; a new constraint fails ``test_every_constraint_has_a_case``
until the table below has a case that triggers it.

Each case starts from a valid config (the stack's minimum plus the context that makes its
position exist, both proven to load) and changes one thing; it must yield exactly one
problem, at the full camelCase key path, whose message names the rule.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import pkgutil
import types
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
import pytest
from pydantic import AfterValidator, HttpUrl, IPvAnyNetwork
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo

import settings as settings_package
from settings import SettingsError, StackSettings, load_settings
from settings.base import SettingsModel
from settings.data import (
    ExternalPostgres,
    ExternalRedis,
    ObjectStoreTarget,
    PostgresBackupSettings,
    PostgresSettings,
    RedisSettings,
    SecretReference,
    ServerSettings,
)
from settings.environment import ResolvedQuota, Subject
from settings.monitoring import DEFAULT_LATENCY_P95_SECONDS, SecretKeyRef
from settings.quantities import Cpu, Memory
from settings.rollout import BlueGreenSettings, CanarySettings, RolloutSettings
from tests.conftest import POSTGRES_BACKUP
from tools.offline import stack_values

STACK = "staging"
BASE: dict[str, Any] = {"environment": {"domain": "staging.codai.dev", "release": "2024.12.1"},
                        "postgres": POSTGRES_BACKUP}
BOGUS = "bogusKey"
#: A public catalog service: a canary needs ingress traffic to split.
SERVICE = "codai"

# --- walking the models ----------------------------------------------------------------------

#: The least each model needs to validate, when defaults alone do not (required keys, validators).
MINIMAL: dict[type[SettingsModel], dict[str, Any]] = {
    Subject: {"kind": "Group", "name": "codai:auditors"},
    CanarySettings: {"image": {"tag": "2024.12.2"}},
    BlueGreenSettings: {"active": "blue"},
    SecretReference: {"name": "db-admin"},
    ExternalPostgres: {"host": "db.example.com", "adminSecret": {"name": "db-admin"}, "egressCidrs": ["10.0.0.0/16"]},
    ExternalRedis: {"host": "cache.example.com", "adminSecret": {"name": "cache-admin"},
                    "egressCidrs": ["10.1.0.0/16"]},
    ObjectStoreTarget: {"url": "s3://codai-backups/staging", "credentialsSecret": "backup-s3"},
    SecretKeyRef: {"name": "alertmanager-slack", "key": "webhookUrl"},
}

#: What a parent must say for an optional block to be allowed at all: (parent, field) -> parent keys.
ENABLES: dict[tuple[type[SettingsModel], str], dict[str, Any]] = {
    (RolloutSettings, "canary"): {"strategy": "canary"},
    (RolloutSettings, "blue_green"): {"strategy": "blueGreen"},
    (PostgresSettings, "external"): {"mode": "external"},
    (RedisSettings, "external"): {"mode": "external"},
    (PostgresBackupSettings, "object_store"): {"target": "objectStore"},
}

#: Keys of dicts of models whose key type is a plain string (enum keys take their first member).
DICT_KEYS: dict[tuple[type[SettingsModel], str], str] = {(StackSettings, "services"): SERVICE}


@dataclass(frozen=True)
class Step:
    parent: type[SettingsModel]
    field: str
    kind: Literal["field", "dict", "list"]
    key: str = ""

    @property
    def alias(self) -> str:
        return self.parent.model_fields[self.field].alias or self.field

    @property
    def text(self) -> str:
        return {"field": f".{self.alias}", "dict": f".{self.alias}.{self.key}", "list": f".{self.alias}[0]"}[self.kind]


@dataclass(frozen=True)
class Position:
    """Where a settings model sits in a stack config, and how to get there."""

    steps: tuple[Step, ...]
    model: type[SettingsModel]

    @property
    def path(self) -> str:
        return "".join(step.text for step in self.steps).removeprefix(".")

    def config(self) -> dict[str, Any]:
        """A valid stack config in which this position exists."""
        config = copy.deepcopy(BASE)
        node = config
        for step in self.steps:
            merge(node, ENABLES.get((step.parent, step.field), {}))
            child = minimal(self.model if step is self.steps[-1] else _model_at(step))
            if step.kind == "list":
                node[step.alias] = [child]
                node = child
            elif step.kind == "dict":
                node = node.setdefault(step.alias, {}).setdefault(step.key, child)
            else:
                node = node.setdefault(step.alias, child)
        return config

    def node(self, config: dict[str, Any]) -> dict[str, Any]:
        """The mapping of ``config`` at this position."""
        node: Any = config
        for step in self.steps:
            node = node[step.alias]
            node = node[0] if step.kind == "list" else node[step.key] if step.kind == "dict" else node
        assert isinstance(node, dict)
        return node


def minimal(model: type[SettingsModel]) -> dict[str, Any]:
    return copy.deepcopy(MINIMAL.get(model, {}))


def merge(into: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``change`` into ``into``; a ``Replace`` value overwrites, ``DELETE`` removes."""
    for key, value in change.items():
        if value is DELETE:
            into.pop(key, None)
        elif isinstance(value, Replace):
            into[key] = copy.deepcopy(value.value)
        elif isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)
    return into


@dataclass(frozen=True)
class Replace:
    value: Any


DELETE = object()


def _unwrap(annotation: Any) -> Iterator[tuple[Literal["field", "dict", "list"], Any, Any]]:
    """(kind, key type, model) for every settings model an annotation holds."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        yield from _unwrap(args[0])
    elif origin in (Union, types.UnionType):
        for arg in args:
            yield from _unwrap(arg)
    elif origin is list:
        yield from (("list", None, model) for _, _, model in _unwrap(args[0]))
    elif origin is dict:
        yield from (("dict", args[0], model) for _, _, model in _unwrap(args[1]))
    elif inspect.isclass(annotation) and issubclass(annotation, SettingsModel):
        yield "field", None, annotation


def _dict_key(parent: type[SettingsModel], field: str, key_type: Any) -> str:
    if inspect.isclass(key_type) and issubclass(key_type, Enum):
        return str(next(iter(key_type)).value)
    return DICT_KEYS[(parent, field)]


_MODEL_AT: dict[Step, type[SettingsModel]] = {}


def _model_at(step: Step) -> type[SettingsModel]:
    return _MODEL_AT[step]


def walk(model: type[SettingsModel] = StackSettings, steps: tuple[Step, ...] = ()) -> Iterator[Position]:
    yield Position(steps, model)
    for name, field in model.model_fields.items():
        for kind, key_type, child in _unwrap(field.annotation):
            key = _dict_key(model, name, key_type) if kind == "dict" else ""
            step = Step(model, name, kind, key)
            _MODEL_AT[step] = child
            yield from walk(child, (*steps, step))


POSITIONS = list(walk())
BY_PATH = {position.path: position for position in POSITIONS}


def settings_models() -> set[type[SettingsModel]]:
    """Every SettingsModel subclass defined in the settings package."""
    found: set[type[SettingsModel]] = set()
    for info in pkgutil.iter_modules(settings_package.__path__):
        module = importlib.import_module(f"settings.{info.name}")
        found |= {value for value in vars(module).values() if inspect.isclass(value)
                  and issubclass(value, SettingsModel) and value.__module__ == module.__name__}
    return found


REACHED = {position.model for position in POSITIONS}
#: Models that are no stack key of their own, and why.
NOT_IN_STACK_FILES: dict[type[SettingsModel], str] = {
    SettingsModel: "the base of every model",
    ResolvedQuota: "built from the sizing table and environment.quota, never read from a stack file",
}


def reached_or_base(model: type[SettingsModel]) -> bool:
    """Reached by the walk, or a base class whose every subclass is (its fields are checked through them)."""
    subclasses = model.__subclasses__()
    return model in REACHED or (bool(subclasses) and all(reached_or_base(sub) for sub in subclasses))


# --- enumerating the constraints -------------------------------------------------------------

#: Value types that reject what does not parse (each is a constraint of the field using it).
VALUE_TYPES = (Cpu, Memory, HttpUrl, IPvAnyNetwork)
PLAIN_TYPES = (str, int, float, bool, type(None))
BOUNDS = (annotated_types.Ge, annotated_types.Gt, annotated_types.Le, annotated_types.Lt,
          annotated_types.MinLen, annotated_types.MaxLen)


def _metadata_constraints(metadata: list[Any], where: str) -> Iterator[str]:
    for item in metadata:
        if isinstance(item, FieldInfo):
            yield from _metadata_constraints(item.metadata, where)
        elif isinstance(item, BOUNDS):
            yield f"{where}:{type(item).__name__.lower()}"
        elif isinstance(item, AfterValidator):
            yield f"{where}:{item.func.__name__}"
        elif getattr(item, "pattern", None):
            yield f"{where}:pattern"
        else:
            raise AssertionError(f"{where}: unhandled constraint {item!r}; teach this test about it")


def _type_constraints(annotation: Any, where: str) -> Iterator[str]:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        yield from _type_constraints(args[0], where)
        yield from _metadata_constraints(list(args[1:]), where)
    elif origin in (Union, types.UnionType):
        for arg in args:
            yield from _type_constraints(arg, where)
    elif origin is list:
        yield from _type_constraints(args[0], f"{where}[item]")
    elif origin is dict:
        yield from _type_constraints(args[0], f"{where}[key]")
        yield from _type_constraints(args[1], f"{where}[value]")
    elif origin is Literal:
        yield f"{where}:literal"
    elif inspect.isclass(annotation) and issubclass(annotation, Enum):
        yield f"{where}:enum"
    elif inspect.isclass(annotation) and issubclass(annotation, VALUE_TYPES):
        yield f"{where}:{annotation.__name__}"
    elif not (annotation in PLAIN_TYPES or (inspect.isclass(annotation) and issubclass(annotation, SettingsModel))):
        raise AssertionError(f"{where}: unhandled type {annotation!r}; teach this test about it")


def model_constraints(model: type[SettingsModel]) -> Iterator[str]:
    for name, field in model.model_fields.items():
        where = f"{model.__name__}.{name}"
        yield from _type_constraints(field.annotation, where)
        yield from _metadata_constraints(field.metadata, where)
    decorators = model.__pydantic_decorators__
    for name in (*decorators.field_validators, *decorators.model_validators):
        yield f"{model.__name__}:{name}"


#: The resources each server's sizing checks: PostgreSQL's exporter is CloudNativePG's, inside its container.
CHECKED_RESOURCES = {"postgres": ("resources", "pooler.resources"), "redis": ("resources", "exporterResources")}

#: Rules checked after the models, across keys (settings.resolve and settings.loader): not model
#: metadata, so listed here; the data servers' and the quota's are derived from what they check.
CROSS_KEY_RULES = {
    "resolve:unknown-service",
    "resolve:canary-needs-a-public-service",
    "resolve:replicas-min-above-max",
    "resolve:cpu-request-above-limit",
    "resolve:memory-request-above-limit",
    "loader:monitoring-namespace-differs",
    *(f"{server.key}.{resources}:{kind}-request-above-limit" for server in ServerSettings.__subclasses__()
      for resources in CHECKED_RESOURCES[server.key] for kind in ("cpu", "memory")),
    "postgres.backup.target:in-cluster-volume",
    "postgres.backup.schedule:sunday-as-seven",
    *(f"capacity:environment.quota.{to_camel(name)}" for name in ResolvedQuota.model_fields),
    # The connection budget (settings.connection_budget): the server's side, and each tier's Pooler's.
    "budget:postgres.maxConnections",
    "budget:postgres.pooler.instances",
}

#: Validators that reshape a value and never reject one, each with the test that shows it.
NORMALISERS = {"AlertSettings:_every_tier": "test_latency_objectives_keep_the_tiers_left_out"}


def all_constraints() -> set[str]:
    return {constraint for model in REACHED for constraint in model_constraints(model)} | CROSS_KEY_RULES


def problems(config: dict[str, Any], stack: str = STACK) -> list[tuple[str, str]]:
    with pytest.raises(SettingsError) as caught:
        load_settings(stack, config)
    return caught.value.problems


def join(position: str, key: str) -> str:
    return f"{position}{key}" if not position or key.startswith("[") or not key else f"{position}.{key}"


# --- 1. unknown keys, at every position -------------------------------------------------------


@pytest.mark.parametrize("position", POSITIONS, ids=lambda position: position.path or "<top level>")
def test_the_context_of_each_position_loads(position: Position):
    load_settings(STACK, position.config())


@pytest.mark.parametrize("position", POSITIONS[1:], ids=lambda position: position.path)
def test_an_unknown_key_is_refused_at_its_full_path(position: Position):
    config = position.config()
    position.node(config)[BOGUS] = "x"
    [(path, message)] = problems(config)
    assert path == f"{position.path}.{BOGUS}"
    assert "unknown key" in message


def test_an_unknown_top_level_key_is_refused_by_name():
    with pytest.raises(SettingsError) as caught:
        load_settings(STACK, {**BASE, BOGUS: {}})
    [(path, message)] = caught.value.problems
    assert path == BOGUS and message.startswith("unknown configuration key; known keys: environment, tiers")
    assert f"codai-platform:{BOGUS}: unknown configuration key" in str(caught.value)


def test_every_settings_model_is_reached_by_the_walk():
    orphans = {model for model in settings_models() if not reached_or_base(model)} - NOT_IN_STACK_FILES.keys()
    assert not orphans, f"settings models no stack key leads to: {sorted(m.__name__ for m in orphans)}"
    assert not REACHED & NOT_IN_STACK_FILES.keys(), "a model listed as not in stack files is reached"
    assert len(POSITIONS) == len({position.path for position in POSITIONS})


# --- 2. every constraint has a case -----------------------------------------------------------

GE1, LE100 = "greater than or equal to 1", "less than or equal to 100"
NOT_DURATION, NOT_POSITIVE = "is not a duration such as '30s'", "must be longer than zero"
DIGEST = "sha256:" + "a" * 64
CANARY = f"services.{SERVICE}.rollout.canary"


def case(name: str, position: str | tuple[str, str], change: dict[str, Any], key: str, fragment: str,
         *covers: str) -> Any:
    """In the valid context of ``position``, apply ``change`` at it (or at ``(context, at)``'s second path):
    one problem at ``key`` (relative to it) naming the rule in ``fragment``; ``covers``: the ids it triggers."""
    context, at = position if isinstance(position, tuple) else (position, position)
    return pytest.param(Case(context, at, change, join(at, key), fragment, covers), id=name)


@dataclass(frozen=True)
class Case:
    context: str
    at: str
    change: dict[str, Any]
    path: str
    fragment: str
    covers: tuple[str, ...]


def _environment_cases() -> list[Any]:
    env, k8s, rbac = "environment", "environment.kubernetes", "environment.rbac.deployers[0]"
    return [
        case("domain-without-dot", env, {"domain": "codai"}, "domain", "not a valid DNS hostname",
             "EnvironmentSettings.domain:_hostname"),
        case("domain-uppercase", env, {"domain": "Staging.Codai.dev"}, "domain", "not a valid DNS hostname"),
        case("release-latest", env, {"release": "latest"}, "release", "'latest' is not a pinned version",
             "EnvironmentSettings.release:image_tag"),
        case("release-not-a-tag", env, {"release": "2024 12"}, "release", "is not a valid image tag"),
        case("registry-uppercase", env, {"imageRegistry": "GHCR.io/Codai"}, "imageRegistry",
             "is not an image registry path", "EnvironmentSettings.image_registry:_registry"),
        case("namespace-too-long", env, {"namespace": "c" * 64}, "namespace", "at most 63 characters",
             "EnvironmentSettings.namespace:dns_label"),
        case("sizing-not-a-profile", env, {"sizing": "huge"}, "sizing", "'minimal' or 'highAvailability'",
             "EnvironmentSettings.sizing:enum"),
        case("rollout-deadline-zero", env, {"rolloutDeadline": "0"}, "rolloutDeadline", NOT_POSITIVE,
             "EnvironmentSettings.rollout_deadline:_positive_duration"),
        case("rollout-deadline-malformed", env, {"rolloutDeadline": "5 min"}, "rolloutDeadline", NOT_DURATION),
        case("ingress-class-uppercase", "environment.ingress", {"className": "Nginx"}, "className",
             "is not a DNS label", "IngressSettings.class_name:dns_label"),
        case("ingress-namespace-underscore", "environment.ingress", {"controllerNamespace": "ingress_nginx"},
             "controllerNamespace", "is not a DNS label", "IngressSettings.controller_namespace:dns_label"),
        case("cluster-issuer-uppercase", "environment.tls", {"clusterIssuer": "LetsEncrypt"}, "clusterIssuer",
             "is not a DNS label", "TlsSettings.cluster_issuer:dns_label"),
        case("k8s-api-server-not-cidr", k8s, {"apiServerCidrs": ["kubernetes.default"]}, "apiServerCidrs[0]",
             "not a valid IPv4 or IPv6 network", "KubernetesSettings.api_server_cidrs[item]:IPvAnyNetwork"),
        case("k8s-api-server-no-port", k8s, {"apiServerPorts": []}, "apiServerPorts", "at least 1 item",
             "KubernetesSettings.api_server_ports:minlen"),
        case("k8s-api-server-port-0", k8s, {"apiServerPorts": [0]}, "apiServerPorts[0]", GE1,
             "KubernetesSettings.api_server_ports[item]:ge"),
        case("k8s-api-server-port-65536", k8s, {"apiServerPorts": [65536]}, "apiServerPorts[0]",
             "less than or equal to 65535", "KubernetesSettings.api_server_ports[item]:le"),
        case("k8s-min-malformed", k8s, {"minVersion": "1.9"}, "minVersion", "not a Kubernetes minor version",
             "KubernetesSettings.min_version:_k8s_version"),
        case("k8s-max-malformed", k8s, {"maxVersion": "2.0"}, "maxVersion", "not a Kubernetes minor version",
             "KubernetesSettings.max_version:_k8s_version"),
        case("k8s-min-above-max", k8s, {"minVersion": "1.34", "maxVersion": "1.30"}, "",
             "minVersion 1.34 is newer than maxVersion 1.30", "KubernetesSettings:_ordered"),
        case("subject-kind-unknown", rbac, {"kind": "Robot"}, "kind", "'Group', 'User' or 'ServiceAccount'",
             "Subject.kind:literal"),
        case("subject-name-empty", rbac, {"name": ""}, "name", "at least 1 character", "Subject.name:minlen"),
        case("subject-name-blank", rbac, {"name": "codai deployers"}, "name", "should match pattern '^\\S+$'",
             "Subject.name:pattern"),
        case("subject-namespace-invalid", rbac, {"kind": "ServiceAccount", "namespace": "CI"}, "namespace",
             "is not a DNS label", "Subject.namespace:dns_label"),
        case("service-account-without-namespace", rbac, {"kind": "ServiceAccount"}, "",
             "a ServiceAccount subject needs a namespace", "Subject:_namespace_for_service_accounts"),
        case("group-with-namespace", "environment.rbac.viewers[0]", {"namespace": "ci"}, "",
             "a Group subject takes no namespace"),
    ]


def _quota_cases() -> list[Any]:
    quota, needed = "environment.quota", "cannot hold every service at its replicas.max plus the data tier"
    return [
        case("quota-pods-0", quota, {"pods": 0}, "pods", GE1, "QuotaSettings.pods:ge"),
        case("quota-pvcs-negative", quota, {"persistentVolumeClaims": -1}, "persistentVolumeClaims",
             "greater than or equal to 0", "QuotaSettings.persistent_volume_claims:ge"),
        case("quota-cpu-unparseable", quota, {"requestsCpu": "500x"}, "requestsCpu", "'500x' is not a CPU quantity",
             "QuotaSettings.requests_cpu:Cpu"),
        case("quota-cpu-zero", quota, {"requestsCpu": "0"}, "requestsCpu", "must be a positive whole number"),
        case("quota-memory-unparseable", quota, {"requestsMemory": "lots"}, "requestsMemory",
             "'lots' is not a memory quantity", "QuotaSettings.requests_memory:Memory"),
        case("quota-memory-fractional-bytes", quota, {"requestsMemory": "0.5"}, "requestsMemory",
             "must be a positive whole number of bytes"),
        case("quota-limits-unparseable", quota, {"limitsMemory": "1Q"}, "limitsMemory", "is not a memory quantity",
             "QuotaSettings.limits_memory:Memory"),
        case("quota-storage-negative", quota, {"requestsStorage": "-1Gi"}, "requestsStorage",
             "is not a memory quantity", "QuotaSettings.requests_storage:Memory"),
        *(case(f"quota-{key}-too-small", quota, {key: value}, key, needed, f"capacity:{quota}.{key}")
          for key, value in (("requestsCpu", "4"), ("requestsMemory", "8Gi"), ("limitsMemory", "8Gi"), ("pods", 10),
                             ("requestsStorage", "10Gi"), ("persistentVolumeClaims", 1))),
    ]


def _workload_cases() -> list[Any]:
    svc, tier = f"services.{SERVICE}", "tiers.core"
    return [
        case("replicas-min-0", f"{svc}.replicas", {"min": 0}, "min", f"{GE1} (got 0)", "Replicas.min:ge"),
        case("replicas-min-101", f"{svc}.replicas", {"min": 101}, "min", f"{LE100} (got 101)", "Replicas.min:le"),
        case("replicas-max-0", f"{tier}.replicas", {"max": 0}, "max", GE1, "Replicas.max:ge"),
        case("replicas-max-101", f"{tier}.replicas", {"max": 101}, "max", LE100, "Replicas.max:le"),
        case("cpu-target-0", f"{svc}.autoscaling", {"targetCpuUtilization": 0}, "targetCpuUtilization", GE1,
             "Autoscaling.target_cpu_utilization:ge"),
        case("cpu-target-101", f"{svc}.autoscaling", {"targetCpuUtilization": 101}, "targetCpuUtilization", LE100,
             "Autoscaling.target_cpu_utilization:le"),
        case("memory-target-0", f"{tier}.autoscaling", {"targetMemoryUtilization": 0}, "targetMemoryUtilization",
             GE1, "Autoscaling.target_memory_utilization:ge"),
        case("memory-target-101", f"{tier}.autoscaling", {"targetMemoryUtilization": 101},
             "targetMemoryUtilization", LE100, "Autoscaling.target_memory_utilization:le"),
        case("cpu-unparseable", f"{svc}.resources.requests", {"cpu": "1 core"}, "cpu", "is not a CPU quantity",
             "Amounts.cpu:Cpu"),
        case("cpu-not-a-quantity", f"{tier}.resources.limits", {"cpu": True}, "cpu",
             "CPU must be a quantity such as '250m'"),
        case("memory-unparseable", f"{svc}.resources.limits", {"memory": "1GB"}, "memory",
             "'1GB' is not a memory quantity", "Amounts.memory:Memory"),
        case("replicas-min-above-max", f"{svc}.replicas", {"min": 6, "max": 4}, "min",
             "replicas.min 6 is above replicas.max 4", "resolve:replicas-min-above-max"),
        case("replicas-max-below-default-min", f"{svc}.replicas", {"max": 2}, "max",
             "codai: replicas.min 3 is above replicas.max 2 (max from services.codai.replicas.max)"),
        case("cpu-request-above-limit", f"{svc}.resources", {"requests": {"cpu": "3"}}, "requests.cpu",
             "codai: cpu request 3 is above its limit 2 (limit from environment.sizing",
             "resolve:cpu-request-above-limit"),
        case("memory-limit-below-default-request", f"{svc}.resources", {"limits": {"memory": "512Mi"}},
             "limits.memory", "memory request 1Gi is above its limit 512Mi (limit from services.codai.resources",
             "resolve:memory-request-above-limit"),
        case("unknown-service", "", {"services": {"chatai": {}}}, "services.chatai", "unknown service 'chatai'",
             "resolve:unknown-service"),
        case("canary-of-internal-service", "", {"services": {"memorai": {"rollout": {
            "strategy": "canary", "canary": {"image": {"tag": "2"}}}}}}, "services.memorai.rollout.strategy",
             "memorai is internal: a canary splits ingress traffic", "resolve:canary-needs-a-public-service"),
        case("unknown-tier", "", {"tiers": {"gold": {}}}, "tiers.gold", "'core', 'business' or 'support' (got 'gold')",
             "StackSettings.tiers[key]:enum"),
        case("env-name-not-upper-snake", svc, {"env": {"log-level": "debug"}}, "env",
             "environment variable names must be UPPER_SNAKE, got ['log-level']", "ServiceOverrides:_env_names"),
        case("feature-flag-name", svc, {"featureFlags": {"New-Checkout": True}}, "featureFlags",
             "feature flag names are lowerCamelCase (e.g. newCheckout), got ['New-Checkout']",
             "ServiceOverrides:_flag_names"),
    ]


def _rollout_cases() -> list[Any]:
    svc, rollout = f"services.{SERVICE}", f"services.{SERVICE}.rollout"
    return [
        case("image-tag-invalid", f"{svc}.image", {"tag": "-rc1"}, "tag", "'-rc1' is not a valid image tag (letters",
             "ImageOverride.tag:image_tag"),
        case("image-tag-latest", f"{CANARY}.image", {"tag": "latest"}, "tag", "'latest' is not a pinned version"),
        case("image-digest-malformed", f"{svc}.image", {"digest": "sha256:abc"}, "digest",
             "'sha256:abc' is not an image digest of the form 'sha256:<64 hex digits>'",
             "ImageOverride.digest:image_digest"),
        case("image-digest-uppercase", f"{rollout}.blueGreen.green", {"digest": DIGEST.upper()}, "digest",
             "is not an image digest"),
        case("strategy-unknown", rollout, {"strategy": "linear"}, "strategy", "'rolling', 'canary' or 'blueGreen'",
             "RolloutSettings.strategy:enum"),
        case("strategy-canary-without-block", rollout, {"strategy": "canary"}, "",
             "strategy canary needs a `canary` block", "RolloutSettings:_matching_block"),
        case("strategy-blue-green-without-block", rollout, {"strategy": "blueGreen"}, "",
             "strategy blueGreen needs a `blueGreen` block"),
        case("stray-blue-green-block", rollout, {"blueGreen": {"active": "blue"}}, "",
             "`blueGreen` is set but strategy is rolling"),
        case("stray-canary-block", (f"{rollout}.blueGreen", rollout), {"canary": {"image": {"tag": "2"}}}, "",
             "`canary` is set but strategy is blueGreen"),
        case("canary-without-image", CANARY, {"image": DELETE}, "image", "required key is missing"),
        case("canary-image-unpinned", CANARY, {"image": Replace({})}, "",
             "a canary needs image.tag or image.digest", "CanarySettings:_pinned"),
        case("canary-weight-negative", CANARY, {"weight": -1}, "weight", "greater than or equal to 0 (got -1)",
             "CanarySettings.weight:ge"),
        case("canary-weight-101", CANARY, {"weight": 101}, "weight", f"{LE100} (got 101)", "CanarySettings.weight:le"),
        case("canary-replicas-0", CANARY, {"replicas": 0}, "replicas", GE1, "CanarySettings.replicas:ge"),
        case("canary-replicas-11", CANARY, {"replicas": 11}, "replicas", "less than or equal to 10",
             "CanarySettings.replicas:le"),
        case("blue-green-active-unknown", f"{rollout}.blueGreen", {"active": "red"}, "active", "'blue' or 'green'",
             "BlueGreenSettings.active:literal"),
    ]


RATIOS = ("errorRatioCritical", "errorRatioWarning", "cpuCritical", "cpuWarning", "memoryCritical", "memoryWarning",
          "diskCritical")
ALERT_DURATIONS = ("errorRatioFor", "saturationFor", "diskFor", "latencyFor", "certificateFor", "serviceDownFor",
                   "dependencyDownFor", "crashLoopFor", "rolloutInProgressFor", "rolloutStuckFor",
                   "replicasMismatchFor", "replicationLagFor", "walArchivingFor", "backupAgeFor", "poolSaturationFor")
RECEIVERS = {"pagerduty": "PagerDutyReceiver", "slack": "SlackReceiver", "digest": "DigestReceiver"}


def snake(camel: str) -> str:
    return "".join(f"_{char.lower()}" if char.isupper() else char for char in camel)


def _alert_cases() -> list[Any]:
    alerts = "monitoring.alerts"
    return [
        *(case(f"{key}-0", alerts, {key: 0}, key, "greater than 0 (got 0)", f"AlertSettings.{snake(key)}:gt")
          for key in RATIOS),
        *(case(f"{key}-1.5", alerts, {key: 1.5}, key, "less than or equal to 1 (got 1.5)",
               f"AlertSettings.{snake(key)}:le") for key in RATIOS),
        *(case(f"{key}-malformed", alerts, {key: "15 minutes"}, key, f"'15 minutes' {NOT_DURATION}",
               f"AlertSettings.{snake(key)}:_duration") for key in ALERT_DURATIONS),
        case("replication-lag-0", alerts, {"replicationLagSeconds": 0}, "replicationLagSeconds",
             "greater than 0 (got 0)", "AlertSettings.replication_lag_seconds:gt"),
        case("backup-grace-malformed", alerts, {"backupGrace": "2 hours"}, "backupGrace", f"'2 hours' {NOT_DURATION}",
             "AlertSettings.backup_grace:_positive_duration"),
        case("min-request-rate-negative", alerts, {"errorRatioMinRequestRate": -1}, "errorRatioMinRequestRate",
             "greater than or equal to 0", "AlertSettings.error_ratio_min_request_rate:ge"),
        case("latency-unknown-tier", alerts, {"latencyP95Seconds": {"edge": 1}}, "latencyP95Seconds.edge",
             "'core', 'business' or 'support'", "AlertSettings.latency_p95_seconds[key]:enum"),
        case("latency-0", alerts, {"latencyP95Seconds": {"core": 0}}, "latencyP95Seconds.core",
             "greater than 0", "AlertSettings.latency_p95_seconds[value]:gt"),
        case("certificate-days-0", alerts, {"certificateExpiryDays": 0}, "certificateExpiryDays", GE1,
             "AlertSettings.certificate_expiry_days:ge"),
        case("certificate-days-61", alerts, {"certificateExpiryDays": 61}, "certificateExpiryDays",
             "less than or equal to 60", "AlertSettings.certificate_expiry_days:le"),
        case("error-ratio-critical-equals-warning", alerts, {"errorRatioWarning": 0.05}, "",
             "errorRatioCritical (0.05) must be above errorRatioWarning (0.05)",
             "AlertSettings:_critical_above_warning"),
        case("cpu-critical-below-warning", alerts, {"cpuWarning": 0.95}, "",
             "cpuCritical (0.9) must be above cpuWarning (0.95)"),
        case("memory-critical-equals-warning", alerts, {"memoryCritical": 0.8}, "",
             "memoryCritical (0.8) must be above memoryWarning (0.8)"),
    ]


def _receiver_cases() -> list[Any]:
    am = "monitoring.alertmanager"
    cases = []
    for receiver, model in RECEIVERS.items():
        at = f"{am}.{receiver}"
        cases += [
            case(f"{receiver}-group-wait-malformed", at, {"groupWait": "1h30"}, "groupWait", NOT_DURATION,
                 f"{model}.group_wait:_duration"),
            case(f"{receiver}-group-interval-0", at, {"groupInterval": "0"}, "groupInterval", NOT_POSITIVE,
                 f"{model}.group_interval:_positive_duration"),
            case(f"{receiver}-repeat-interval-0s", at, {"repeatInterval": "0s"}, "repeatInterval", NOT_POSITIVE,
                 f"{model}.repeat_interval:_positive_duration"),
            case(f"{receiver}-repeat-before-group", at, {"repeatInterval": "1m", "groupInterval": "2m"}, "",
                 "repeatInterval 1m is shorter than groupInterval 2m", f"{model}:_repeat_after_group"),
            case(f"{receiver}-group-by-duplicates", at, {"groupBy": ["service", "service"]}, "groupBy",
                 "groupBy must be", f"{model}.group_by:_label_names"),
        ]
    return [
        *cases,
        case("group-by-duplicates", am, {"groupBy": ["alertname", "alertname"]}, "groupBy",
             "groupBy must be a non-empty list of distinct label names", "AlertmanagerSettings.group_by:_label_names"),
        case("group-by-empty", f"{am}.digest", {"groupBy": []}, "groupBy", "non-empty list of distinct"),
        case("group-by-bad-label", f"{am}.slack", {"groupBy": ["app.kubernetes.io/name"]}, "groupBy",
             "label names"),
        case("slack-channel-pattern", f"{am}.slack", {"channel": "codai alerts"}, "channel",
             "should match pattern '^[#@][-_a-z0-9.]+$' (got 'codai alerts')", "SlackReceiver.channel:pattern"),
        case("secret-name-invalid", f"{am}.slack.apiUrl", {"name": "Slack_Secret"}, "name", "is not a DNS label",
             "SecretKeyRef.name:dns_label"),
        case("secret-key-invalid", f"{am}.pagerduty.routingKey", {"key": "routing key"}, "key",
             "is not a valid Secret key (letters, digits, '-', '_', '.')", "SecretKeyRef.key:secret_key"),
    ]


def _monitoring_cases() -> list[Any]:
    return [
        case("monitoring-namespace-invalid", "monitoring", {"namespace": "Monitoring"}, "namespace",
             "is not a DNS label", "MonitoringSettings.namespace:dns_label"),
        case("monitoring-namespace-is-the-platform", "monitoring", {"namespace": "codai"}, "namespace",
             "must differ from environment.namespace", "loader:monitoring-namespace-differs"),
        case("runbook-url-relative", "monitoring", {"runbookBaseUrl": "docs/runbooks"}, "runbookBaseUrl",
             "valid URL", "MonitoringSettings.runbook_base_url:HttpUrl"),
        case("runbook-url-not-http", "monitoring", {"runbookBaseUrl": "ftp://runbooks.codai.dev"}, "runbookBaseUrl",
             "URL scheme should be 'http' or 'https'"),
        case("grafana-folder-empty", "monitoring.grafana", {"folder": ""}, "folder", "at least 1 character",
             "GrafanaSettings.folder:minlen"),
        # An empty selector in a NetworkPolicy peer admits every pod of the monitoring namespace.
        case("prometheus-pod-labels-empty", "monitoring", {"prometheusPodLabels": {}}, "prometheusPodLabels",
             "needs at least one label: an empty selector matches everything",
             "MonitoringSettings.prometheus_pod_labels:_label_selector"),
        case("selector-label-key-invalid", "monitoring", {"selectorLabels": {"release name": "x"}}, "selectorLabels",
             "'release name' is not a Kubernetes label key", "MonitoringSettings.selector_labels:_label_selector"),
        case("selector-label-value-invalid", "monitoring", {"selectorLabels": {"release": "kube prometheus"}},
             "selectorLabels", "'kube prometheus' (of 'release') is not a label value"),
        case("dashboard-labels-empty", "monitoring.grafana", {"dashboardLabels": {}}, "dashboardLabels",
             "needs at least one label", "GrafanaSettings.dashboard_labels:_label_selector"),
        case("folder-annotation-invalid", "monitoring.grafana", {"folderAnnotation": "grafana folder"},
             "folderAnnotation", "'grafana folder' is not a Kubernetes label key",
             "GrafanaSettings.folder_annotation:_label_key"),
    ]


SERVERS = {"postgres": ("PostgresSettings", "ExternalPostgres", "postgres"),
           "redis": ("RedisSettings", "ExternalRedis", "redis")}
ABOVE_LIMIT = {"cpu": ("8", "cpu request 8 is above its limit"), "memory": ("8Gi", "memory request 8Gi is above")}
#: Redis runs three servers in production: a request of 8 CPUs each would also overflow the quota.
#: PostgreSQL runs three instances in production: 8 CPUs each would too; 5 (limit 4) fits the quota.
ABOVE_LIMIT_BY_SERVER = {"postgres": {**ABOVE_LIMIT, "cpu": ("5", "cpu request 5 is above its limit")},
                         "redis": {**ABOVE_LIMIT, "cpu": ("2", "cpu request 2 is above its limit")},
                         # Six PgBouncers in production: just above the limit, so the quota still holds them.
                         "postgres.pooler.resources": {"cpu": ("1", "cpu request 1 is above its limit 500m"),
                                                       "memory": ("256Mi", "memory request 256Mi is above")}}


def _server_cases(server: str) -> list[Any]:
    model, external_model, image = SERVERS[server]
    external, secret = f"{server}.external", f"{server}.external.adminSecret"
    return [
        case(f"{server}-image-unpinned", server, {"image": image}, "image", f"'{image}' has no version tag",
             f"{model}.image:pinned_image"),
        case(f"{server}-image-latest", server, {"image": f"{image}:latest"}, "image",
             "'latest' is not a pinned version"),
        case(f"{server}-image-bad-digest", server, {"image": f"{image}@sha256:abc"}, "image",
             "'sha256:abc' is not an image digest of the form 'sha256:<64 hex digits>'"),
        *([case(f"{server}-exporter-unpinned", server, {"exporterImage": "registry.example.com:5000/exporter"},
                "exporterImage", "has no version tag", f"{model}.exporter_image:pinned_image")]
          if server == "redis" else []),
        case(f"{server}-mode-unknown", server, {"mode": "managed"}, "mode", "'inCluster' or 'external'",
             f"{model}.mode:literal"),
        case(f"{server}-storage-size", server, {"storageSize": "big"}, "storageSize", "is not a memory quantity",
             f"{model}.storage_size:Memory"),
        case(f"{server}-storage-class", server, {"storageClass": "Fast_SSD"}, "storageClass", "is not a DNS label",
             f"{model}.storage_class:dns_label"),
        case(f"{server}-external-without-block", server, {"mode": "external"}, "",
             "mode is external but `external` (host, adminSecret, egressCidrs) is not set", f"{model}:_rules"),
        case(f"{server}-external-with-in-cluster", (external, server), {"mode": "inCluster"}, "",
             "`external` is set but mode is inCluster"),
        *(case(f"{server}-{resources}-{kind}-above-limit", f"{server}.{resources}.requests", {kind: value}, kind,
               fragment, f"{server}.{resources}:{kind}-request-above-limit")
          for resources in CHECKED_RESOURCES[server]
          for kind, (value, fragment) in ABOVE_LIMIT_BY_SERVER.get(f"{server}.{resources}",
                                                                   ABOVE_LIMIT_BY_SERVER[server]).items()),
        case(f"{server}-host-invalid", external, {"host": "DB_Server"}, "host",
             "'DB_Server' is neither a lowercase DNS name nor an IP address", f"{external_model}.host:_host"),
        case(f"{server}-port-0", external, {"port": 0}, "port", GE1, f"{external_model}.port:ge"),
        case(f"{server}-port-65536", external, {"port": 65536}, "port", "less than or equal to 65535 (got 65536)",
             f"{external_model}.port:le"),
        case(f"{server}-egress-empty", external, {"egressCidrs": []}, "egressCidrs", "at least 1 item",
             f"{external_model}.egress_cidrs:minlen"),
        case(f"{server}-egress-not-cidr", external, {"egressCidrs": ["10.0.0.300/16"]}, "egressCidrs[0]",
             "not a valid IPv4 or IPv6 network (got '10.0.0.300/16')",
             f"{external_model}.egress_cidrs[item]:IPvAnyNetwork"),
        case(f"{server}-admin-secret-name", secret, {"name": "Db_Admin"}, "name", "is not a DNS label",
             "SecretReference.name:dns_label"),
        case(f"{server}-admin-username-key", secret, {"usernameKey": "user name"}, "usernameKey",
             "'user name' is not a valid Secret key (letters, digits, '-', '_', '.')",
             "SecretReference.username_key:secret_key"),
        case(f"{server}-admin-password-key", secret, {"passwordKey": "pass/word"}, "passwordKey",
             "is not a valid Secret key", "SecretReference.password_key:secret_key"),
    ]


def _postgres_cases() -> list[Any]:
    pg, backup, store = "postgres", "postgres.backup", "postgres.backup.objectStore"
    return [
        case("postgres-tls-mode", f"{pg}.external", {"tlsMode": "prefer"}, "tlsMode",
             "'disable', 'require', 'verify-ca' or 'verify-full'", "ExternalPostgres.tls_mode:literal"),
        case("postgres-admin-database-empty", f"{pg}.external", {"adminDatabase": ""}, "adminDatabase",
             "at least 1 character", "ExternalPostgres.admin_database:minlen"),
        case("postgres-admin-database-not-a-name", f"{pg}.external", {"adminDatabase": "a b;"}, "adminDatabase",
             "should match pattern", "ExternalPostgres.admin_database:pattern"),
        case("postgres-admin-database-too-long", f"{pg}.external", {"adminDatabase": "d" * 64}, "adminDatabase",
             "at most 63 characters", "ExternalPostgres.admin_database:maxlen"),
        case("max-connections-19", pg, {"maxConnections": 19}, "maxConnections", "greater than or equal to 20",
             "PostgresSettings.max_connections:ge"),
        case("max-connections-5001", pg, {"maxConnections": 5001}, "maxConnections", "less than or equal to 5000",
             "PostgresSettings.max_connections:le"),
        case("connection-limit-0", pg, {"connectionLimitPerService": 0}, "connectionLimitPerService", GE1,
             "PostgresSettings.connection_limit_per_service:ge"),
        case("connection-limit-at-max", pg, {"connectionLimitPerService": 200}, "",
             "connectionLimitPerService 200 must stay below maxConnections 200"),
        case("parameters-owned", pg, {"parameters": {"port": "5433"}}, "",
             "parameters ['port'] are set by the program"),
        case("parameters-bad-name", pg, {"parameters": {"Work-Mem": "8MB"}}, "",
             "parameters ['Work-Mem'] are not postgresql.conf parameter names"),
        case("backup-schedule-word", backup, {"schedule": "daily"}, "schedule",
             "'daily' is not a five-field cron schedule", "PostgresBackupSettings.schedule:_cron"),
        case("backup-schedule-four-fields", backup, {"schedule": "30 2 * *"}, "schedule", "is not a five-field cron"),
        case("backup-schedule-hour-99", backup, {"schedule": "30 99 * * *"}, "schedule", "hour 99 is outside 0-23"),
        case("backup-schedule-month-0", backup, {"schedule": "30 2 1 0 *"}, "schedule", "month 0 is outside 1-12"),
        case("backup-schedule-step-0", backup, {"schedule": "*/0 2 * * *"}, "schedule",
             "a step of 0 in the minute field never advances"),
        case("parameters-line-break", pg, {"parameters": {"work_mem": "8MB\nlisten_addresses = '*'"}}, "",
             "parameters ['work_mem'] hold a line break or another control character"),
        case("backup-keep-0", backup, {"keep": 0}, "keep", GE1, "PostgresBackupSettings.keep:ge"),
        case("backup-keep-367", backup, {"keep": 367}, "keep", "less than or equal to 366",
             "PostgresBackupSettings.keep:le"),
        case("backup-target-unknown", backup, {"target": "bucket"}, "target", "'volume' or 'objectStore'",
             "PostgresBackupSettings.target:literal"),
        case("backup-storage-size", backup, {"storageSize": "0Gi"}, "storageSize", "must be a positive whole number",
             "PostgresBackupSettings.storage_size:Memory"),
        case("backup-storage-class", backup, {"storageClass": "-ssd"}, "storageClass", "is not a DNS label",
             "PostgresBackupSettings.storage_class:dns_label"),
        case("backup-object-store-without-block", backup, {"target": "objectStore", "objectStore": None}, "",
             "target is objectStore but `objectStore` (url, credentialsSecret) is not set",
             "PostgresBackupSettings:_target"),
        case("backup-object-store-with-volume", (store, backup), {"target": "volume"}, "",
             "`objectStore` is set but target is volume"),
        case("object-store-url-not-s3", store, {"url": "https://codai-backups"}, "",
             "url 'https://codai-backups' is not of the form s3://<bucket>/<prefix>", "ObjectStoreTarget:_url"),
        case("object-store-endpoint-not-https", store, {"endpoint": "http://minio:9000"}, "",
             "endpoint 'http://minio:9000' must be an https:// URL"),
        case("object-store-region-empty", store, {"region": ""}, "region", "at least 1 character",
             "ObjectStoreTarget.region:minlen"),
        case("object-store-credentials", store, {"credentialsSecret": "Backup_S3"}, "credentialsSecret",
             "is not a DNS label", "ObjectStoreTarget.credentials_secret:dns_label"),
        case("backup-retention-words", backup, {"retention": "30 days"}, "retention",
             "'30 days' is not a number of days, weeks or months such as '30d', '4w' or '6m'",
             "PostgresBackupSettings.retention:retention_policy"),
        case("backup-retention-years", backup, {"retention": "1y"}, "retention", "'1y' is not a number of days"),
        case("backup-schedule-sunday-as-seven", backup, {"schedule": "0 3 * * 7"}, "schedule",
             "write Sunday as 0", "postgres.backup.schedule:sunday-as-seven"),
        case("backup-retention-zero", backup, {"retention": "0d"}, "retention", "'0d' is not a number of days"),
        case("backup-in-cluster-to-a-volume", backup, {"target": "volume", "objectStore": None}, "target",
             "volume keeps the backups in the cluster they protect", "postgres.backup.target:in-cluster-volume"),
        case("postgres-instances-zero", pg, {"instances": 0}, "instances", "greater than or equal to 1 (got 0)",
             "PostgresSettings.instances:ge"),
        case("postgres-instances-ten", pg, {"instances": 10}, "instances", "less than or equal to 9 (got 10)",
             "PostgresSettings.instances:le"),
        case("postgres-instances-external", (f"{pg}.external", pg), {"instances": 3}, "",
             "instances set but mode is external"),
        case("pooler-instances-zero", f"{pg}.pooler", {"instances": 0}, "instances",
             "greater than or equal to 1 (got 0)", "PoolerSettings.instances:ge"),
        case("pooler-instances-ten", f"{pg}.pooler", {"instances": 10}, "instances",
             "less than or equal to 9 (got 10)", "PoolerSettings.instances:le"),
        case("operator-namespace", pg, {"operatorNamespace": "CNPG"}, "operatorNamespace", "is not a DNS label",
             "PostgresSettings.operator_namespace:dns_label"),
        case("postgres-image-without-barman", pg, {"image": "postgres:16.4-bookworm"}, "",
             "has no barman-cloud, which archiving, backups and recovery run"),
        case("object-store-egress-not-cidr", store, {"egressCidrs": ["s3.amazonaws.com"]}, "egressCidrs[0]",
             "not a valid IPv4 or IPv6 network", "ObjectStoreTarget.egress_cidrs[item]:IPvAnyNetwork"),
    ]


def _redis_cases() -> list[Any]:
    return [
        case("maxmemory-percent-9", "redis", {"maxmemoryPercent": 9}, "maxmemoryPercent",
             "greater than or equal to 10 (got 9)", "RedisSettings.maxmemory_percent:ge"),
        case("maxmemory-percent-96", "redis", {"maxmemoryPercent": 96}, "maxmemoryPercent",
             "less than or equal to 95 (got 96)", "RedisSettings.maxmemory_percent:le"),
        case("eviction-policy-unknown", "redis", {"evictionPolicy": "lru"}, "evictionPolicy",
             "'noeviction', 'volatile-lru', 'allkeys-lru', 'volatile-lfu', 'allkeys-lfu' or 'volatile-ttl'",
             "RedisSettings.eviction_policy:literal"),
        case("instances-even", "redis", {"instances": 2}, "instances",
             "2 instances: use 1, or an odd number from 3, so that a majority of the sentinels remains",
             "RedisSettings:_odd"),
        case("instances-zero", "redis", {"instances": 0}, "instances", "greater than or equal to 1 (got 0)",
             "RedisSettings.instances:ge"),
        case("instances-eleven", "redis", {"instances": 11}, "instances", "less than or equal to 9 (got 11)",
             "RedisSettings.instances:le"),
    ]


#: Room in the quota for the support tier at 16 pods a service (the quota is checked first).
ROOMY_QUOTA = {"pods": 500, "requestsCpu": "80", "requestsMemory": "200Gi", "limitsMemory": "400Gi"}


def _budget_cases() -> list[Any]:
    return [
        case("pools-over-max-connections", "postgres", {"maxConnections": 60}, "maxConnections",
             "server side over budget: 23 services: sum of pool_size 52 x 2 PgBouncers per Pooler = 104 server "
             "connections > max_connections 60 - 18 reserved", "budget:postgres.maxConnections"),
        case("pooler-clients-over-its-instances", "", {"tiers": {"support": {"replicas": {"max": 16}}},
                                                       "environment": {"quota": ROOMY_QUOTA}},
             "postgres.pooler.instances", "client side over budget in the support Pooler: 13 services",
             "budget:postgres.pooler.instances"),
    ]


CASES = [*_environment_cases(), *_quota_cases(), *_workload_cases(), *_rollout_cases(), *_alert_cases(),
         *_receiver_cases(), *_monitoring_cases(), *_server_cases("postgres"), *_server_cases("redis"),
         *_postgres_cases(), *_redis_cases(), *_budget_cases()]


@pytest.mark.parametrize("case", CASES)
def test_a_broken_constraint_is_one_problem_at_its_key(case: Case):
    config = BY_PATH[case.context].config()
    merge(BY_PATH[case.at].node(config), case.change)
    found = problems(config)
    assert len(found) == 1 and found[0][0] == case.path and case.fragment in found[0][1], found


def test_every_constraint_has_a_case():
    covered = {constraint for param in CASES for constraint in param.values[0].covers}
    enumerated = all_constraints()
    missing = enumerated - covered - NORMALISERS.keys()
    assert not missing, f"constraints no case triggers (add one to CASES): {sorted(missing)}"
    stale = (covered | NORMALISERS.keys()) - enumerated
    assert not stale, f"cases cover constraints that no longer exist: {sorted(stale)}"
    assert len({param.id for param in CASES}) == len(CASES)


def test_latency_objectives_keep_the_tiers_left_out():
    """``AlertSettings._every_tier`` never rejects: it fills the tiers a stack leaves out."""
    config = merge(copy.deepcopy(BASE), {"monitoring": {"alerts": {"latencyP95Seconds": {"core": 0.25}}}})
    alerts = load_settings(STACK, config).settings.monitoring.alerts
    assert alerts.latency_p95_seconds == {**DEFAULT_LATENCY_P95_SECONDS, "core": 0.25}


# --- 3. the connection budget of the stack files ---------------------------------------------------

#: Each stack file's budget: PgBouncers per Pooler, reserved slots, (server connections, capacity,
#: spare), each tier's Pooler's clients (every pod at its ceiling x 10) and what each Pooler accepts.
STACK_BUDGETS = {
    "production": (2, 18, (104, 182, 78), {"business": 560, "core": 450, "support": 520}, 2000),
    "staging": (1, 13, (52, 187, 135), {"business": 210, "core": 120, "support": 260}, 1000),
}


def stack_with(stack: str, change: dict[str, Any]) -> dict[str, Any]:
    return merge(copy.deepcopy(stack_values(stack)), change)


@pytest.mark.parametrize("stack", sorted(STACK_BUDGETS))
def test_each_stack_file_fits_its_connection_budget(stack: str):
    budget = load_settings(stack, stack_values(stack)).connection_budget
    assert budget is not None
    print(f"\n{stack}: {budget.server_connections} server connections of {budget.server_capacity} "
          f"({budget.max_connections} - {sum(budget.reserved.values())} reserved {dict(budget.reserved)}), "
          f"{budget.spare_server_connections} spare; clients per Pooler {dict(budget.clients)} of "
          f"{budget.client_capacity} each, spare {budget.spare_client_connections}")
    pgbouncers, reserved, server, clients, capacity = STACK_BUDGETS[stack]
    assert (budget.pooler_instances, sum(budget.reserved.values())) == (pgbouncers, reserved)
    assert (budget.server_connections, budget.server_capacity, budget.spare_server_connections) == server
    assert (budget.clients, budget.client_capacity) == (clients, capacity)
    # What a Pooler's specs are built from: the tier's services, with one pool size each.
    assert sorted(s.name for s in budget.served_by("core")) == ["codai", "logai", "memorai"]
    assert {s.pool_size for s in budget.served_by("core")} == {4}


def test_pools_over_max_connections_are_refused_naming_services_and_figures():
    [(path, message)] = problems(stack_with("production", {"postgres": {"maxConnections": 60}}), "production")
    assert path == "postgres.maxConnections"
    assert message == (
        "server side over budget: 23 services: sum of pool_size 52 x 2 PgBouncers per Pooler = 104 server "
        "connections > max_connections 60 - 18 reserved (superuser 3, monitor 5, jobs 2, standbys 2, pooler auth 6) "
        "= 42; largest: codai 8, logai 8, memorai 8, admin 4, aide 4, ...; raise postgres.maxConnections to at "
        "least 122, or run fewer PgBouncers per Pooler (postgres.pooler.instances, 2): each holds every pool of "
        "its tier")


def test_a_pooler_over_its_clients_is_refused_at_its_instances():
    change = {"tiers": {"support": {"replicas": {"max": 16}}}, "environment": {"quota": ROOMY_QUOTA}}
    [(path, message)] = problems(stack_with("production", change), "production")
    assert path == "postgres.pooler.instances"
    assert message == (
        "client side over budget in the support Pooler: 13 services: sum of client_connections_per_pod x "
        "max_replicas = 2080 client connections > max_client_conn 1000 x 2 PgBouncers = 2000; largest: admin 160, "
        "aide 160, ajutai 160, analizai 160, explorer 160, ...; raise postgres.pooler.instances to at least 3 (each "
        "also holds the tier's pools on the server), or lower tiers.support.replicas.max or the replicas.max of "
        "its largest services")


def test_both_sides_over_budget_are_two_problems():
    change = {"tiers": {"support": {"replicas": {"max": 16}}}, "environment": {"quota": ROOMY_QUOTA},
              "postgres": {"maxConnections": 60}}
    assert [path for path, _ in problems(stack_with("production", change), "production")] == [
        "postgres.maxConnections", "postgres.pooler.instances"]


def test_canary_pods_count_as_clients():
    canary = {"strategy": "canary", "canary": {"image": {"tag": "2024.12.2"}, "replicas": 2}}
    plan = load_settings(STACK, stack_with(STACK, {"services": {SERVICE: {"rollout": canary}}}))
    assert plan.connection_budget is not None
    assert plan.connection_budget.clients["core"] == STACK_BUDGETS[STACK][3]["core"] + 2 * 10


def test_an_external_server_has_no_budget_to_check():
    external = {"mode": "external", "maxConnections": 60, "external": MINIMAL[ExternalPostgres]}
    plan = load_settings("production", stack_with("production", {"postgres": external}))
    assert plan.connection_budget is None


# --- 4. every problem at once --------------------------------------------------------------------


def test_problems_at_every_level_are_reported_together():
    """Field and model rules at every depth, and an unknown top-level key, in one error. A model's own rule
    waits for its fields: postgres.backup's target rule is not judged while its keep is invalid."""
    config = merge(BY_PATH[CANARY].config(), {
        BOGUS: 1,
        "environment": {"domain": "codai", "rbac": {"deployers": [{"kind": "ServiceAccount", "name": "ci"}]}},
        "services": {SERVICE: {"rollout": {"canary": {"weight": 101, "image": {"tag": "latest"}}}}},
        "monitoring": {"alerts": {"cpuWarning": 0.95}, "alertmanager": {"slack": {
            "apiUrl": {"name": "slack", "key": "a b"}}}},
        "postgres": {"backup": {"keep": 0, "target": "objectStore"}},
    })
    with pytest.raises(SettingsError) as caught:
        load_settings("prod-eu", config)
    assert sorted(path for path, _ in caught.value.problems) == sorted([
        BOGUS, "environment.domain", "environment.rbac.deployers[0]", f"{CANARY}.weight", f"{CANARY}.image.tag",
        "monitoring.alerts", "monitoring.alertmanager.slack.apiUrl.key", "postgres.backup.keep",
    ])
    text = str(caught.value)
    assert text.startswith("Pulumi.prod-eu.yaml: invalid configuration (8 problem(s)); nothing was deployed.")
    assert all(f"codai-platform:{path}: " in text for path, _ in caught.value.problems)


def test_cross_key_problems_are_reported_together():
    """Rules of the merged layers, once the models are valid. A tier's clash is reported once per service of
    the tier (18 support services), each at the tier's key."""
    config = merge(copy.deepcopy(BASE), {
        "tiers": {"support": {"replicas": {"min": 5}}},
        "services": {"chatai": {}, "wallet": {"resources": {"requests": {"memory": "2Gi"}}}},
    })
    assert sorted(path for path, _ in problems(config)) == [
        "services.chatai", "services.wallet.resources.requests.memory",
        *("tiers.support.replicas.min" for _ in range(18)),
    ]


def test_a_pooler_beyond_the_most_pgbouncers_is_refused_with_advice_that_can_be_followed():
    # 13 support services x 10 connections per pod x 70 pods: 9100 clients, 10 PgBouncers of 1000 each, and a
    # Pooler may run 9 at most: the only way out is fewer client pods.
    quota = {"pods": 5000, "requestsCpu": "800", "requestsMemory": "2000Gi", "limitsMemory": "4000Gi"}
    change = {"tiers": {"support": {"replicas": {"max": 70}}}, "environment": {"quota": quota}}
    [(path, message)] = problems(stack_with("production", change), "production")
    assert path == "postgres.pooler.instances"
    assert message.endswith(
        "; 10 PgBouncers per Pooler would be needed, more than postgres.pooler.instances allows (at most 9): "
        "lower tiers.support.replicas.max or the replicas.max of its largest services")
    assert "raise postgres.pooler.instances" not in message

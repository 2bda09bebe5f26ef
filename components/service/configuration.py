"""What a service's pods read at start: its ConfigMap (environment) and its generated Secret."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.service.scope import ServiceScope


def config_map(scope: ServiceScope, data: dict[str, str]) -> k8s.core.v1.ConfigMap:
    return k8s.core.v1.ConfigMap(
        f"{scope.name}-config",
        metadata=scope.meta(f"{scope.plan.name}-config"),
        data=data,
        opts=scope.opts(),
    )


def config_data(scope: ServiceScope) -> dict[str, str]:
    """The service's environment: who and where it is, its callees, feature flags, then its own ``env``."""
    plan, args = scope.plan, scope.args
    data = {
        "SERVICE_NAME": plan.name,
        "SERVICE_TIER": plan.tier.value,
        "ENVIRONMENT": args.stack,
        "PORT": str(plan.spec.port),
        "METRICS_PORT": str(plan.spec.metrics_port),
        "PUBLIC_URL": args.url or "",
        # Callees by cluster DNS name, so a service finds the others without hard-coding.
        **{f"{peer.name.upper()}_URL": f"http://{peer.name}.{args.namespace}.svc" for peer in args.callees},
    }
    data.update({f"FEATURE_{_upper_snake(flag)}": _flag_text(value) for flag, value in plan.feature_flags.items()})
    data.update(plan.env)
    return dict(sorted(data.items()))


def secret_names(scope: ServiceScope) -> list[Any]:
    """The Secrets the pods read as environment: the generated one first, then each binding's."""
    names: list[Any] = [binding.secret_name for binding in scope.args.bindings]
    if scope.plan.spec.generated_secrets:
        names.insert(0, _generated_secret(scope).metadata.name)
    return names


def _generated_secret(scope: ServiceScope) -> k8s.core.v1.Secret:
    plan = scope.plan
    values: dict[str, pulumi.Output[str]] = {}
    for key in plan.spec.generated_secrets:
        password = random.RandomPassword(
            f"{scope.name}-{key.lower().replace('_', '-')}",
            length=48,
            special=False,
            opts=pulumi.ResourceOptions(parent=scope.component),
        )
        values[key] = password.result
    return k8s.core.v1.Secret(
        f"{scope.name}-app-secrets",
        metadata=scope.meta(f"{plan.name}-app-secrets"),
        type="Opaque",
        string_data=values,
        opts=scope.opts(),
    )


def _upper_snake(flag: str) -> str:
    """``newCheckout`` -> ``NEW_CHECKOUT``."""
    return "".join(f"_{c}" if c.isupper() else c.upper() for c in flag)


def _flag_text(value: bool | int | str) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)

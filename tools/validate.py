"""Validate what every stack renders, offline, with tools others wrote, plus our own cross-object lint.

    python -m tools.validate [STACK ...] [--crds ../shared/crds]

- Built-in kinds: ``kubernetes-validate`` in strict mode (unknown fields are errors) against the
  oldest and the newest Kubernetes version the stack supports (``environment.kubernetes``).
- Custom resources: the upstream CRD's ``openAPIV3Schema``, with every object schema that lists
  its properties closed, as an API server with strict field validation treats it.
- Lint: references between objects that no schema can see (selectors, ports, targets, names).

The CRD folder lives outside the repository (``../shared/crds``); the program never reads it.
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from services.catalog import CATALOG
from settings.loader import load_settings
from tools.offline import ROOT, discover_stacks, run_stack, stack_config

DEFAULT_CRDS = ROOT.parent / "shared" / "crds"
Object = dict[str, Any]


class _CrdLoader(yaml.SafeLoader):
    """SafeLoader that reads a bare ``=`` (an enum value in the AlertmanagerConfig CRD) as a string."""


def _plain_scalar(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    return str(loader.construct_scalar(node)) if isinstance(node, yaml.ScalarNode) else ""


_CrdLoader.add_constructor("tag:yaml.org,2002:value", _plain_scalar)


def load_crd_schemas(folder: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """``(apiVersion, kind) -> closed JSON schema`` for every served version of every CRD in ``folder``."""
    if not folder.is_dir():
        raise FileNotFoundError(f"CRD folder {folder} not found (expected ../shared/crds beside the repository)")
    schemas = {}
    for path in sorted(folder.glob("*.yaml")):
        for crd in yaml.load_all(path.read_text(), Loader=_CrdLoader):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if version.get("served"):
                    schema = close_schema(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
                    schemas[(f"{group}/{version['name']}", kind)] = schema
    return schemas


def close_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Forbid fields a schema does not list (what ``kubectl --validate=strict`` does)."""
    if isinstance(schema, dict):
        if (schema.get("type") == "object" and "properties" in schema and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            schema["additionalProperties"] = False
            # metadata is checked by the API server's own ObjectMeta schema, not the CRD's.
            schema["properties"].setdefault("metadata", {"type": "object"})
            schema["properties"].setdefault("apiVersion", {"type": "string"})
            schema["properties"].setdefault("kind", {"type": "string"})
        for value in schema.values():
            if isinstance(value, dict):
                close_schema(value)
            elif isinstance(value, list):
                for item in value:
                    close_schema(item)
    return schema


@dataclass
class Report:
    stack: str
    builtin_checked: int = 0
    custom_checked: int = 0
    errors: list[str] | None = None

    def __post_init__(self) -> None:
        self.errors = self.errors or []


def schema_errors(objects: Iterable[Object], versions: Sequence[str],
                  crd_schemas: dict[tuple[str, str], dict[str, Any]]) -> tuple[list[str], int, int]:
    """Errors, and how many built-in and custom objects were checked."""
    errors: list[str] = []
    builtin = custom = 0
    for obj in objects:
        where = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        key = (obj.get("apiVersion", ""), obj.get("kind", ""))
        if key in crd_schemas:
            custom += 1
            validator = jsonschema.Draft7Validator(crd_schemas[key])
            errors += [f"{where}: {'.'.join(map(str, e.absolute_path))}: {e.message}"
                       for e in validator.iter_errors(obj)]
            continue
        builtin += 1
        for version in versions:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                errors.append(f"{where}: no schema for {key} in Kubernetes {version} nor in the CRDs")
            except kubernetes_validate.ValidationError as error:
                errors.append(f"{where} (Kubernetes {version}): {'.'.join(map(str, error.path))}: {error.message}")
    return errors, builtin, custom


# --- cross-object lint ----------------------------------------------------------------------


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


def _pods(objects: Iterable[Object]) -> list[tuple[str, dict[str, str], dict[str, Any]]]:
    """(owner, pod labels, pod spec) for every pod template."""
    pods = []
    for obj in objects:
        template = None
        if obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            template = obj["spec"]["template"]
        elif obj["kind"] == "CronJob":
            template = obj["spec"]["jobTemplate"]["spec"]["template"]
        if template:
            pods.append((f"{obj['kind']}/{obj['metadata']['name']}",
                         template.get("metadata", {}).get("labels", {}), template["spec"]))
    return pods


def _container_ports(pod_spec: dict[str, Any]) -> set[Any]:
    return {value for c in pod_spec.get("containers", []) for p in c.get("ports", [])
            for value in (p.get("name"), p["containerPort"]) if value is not None}


#: Secrets that something other than this program writes (cert-manager fills Ingress TLS secrets).
def _external_secrets(objects: Iterable[Object]) -> set[str]:
    return {tls["secretName"] for obj in objects if obj["kind"] == "Ingress"
            for tls in obj["spec"].get("tls", []) if "secretName" in tls}


@dataclass
class _Index:
    """What the lint rules look things up in."""

    pods: list[tuple[str, dict[str, str], dict[str, Any]]]
    names: set[tuple[str, str]]
    services: dict[str, Object]

    def selected(self, selector: dict[str, str]) -> list[tuple[str, dict[str, str], dict[str, Any]]]:
        return [pod for pod in self.pods if _matches(selector, pod[1])]


def _service_rule(where: str, spec: dict[str, Any], index: _Index) -> list[str]:
    if spec.get("selector") is None:
        return []
    chosen = index.selected(spec["selector"])
    errors = [] if chosen else [f"{where}: selector {spec['selector']} matches no pod"]
    for port in spec.get("ports", []):
        target = port.get("targetPort", port["port"])
        errors += [f"{where}: targetPort {target!r} is not a port of {owner}'s containers"
                   for owner, _, pod_spec in chosen if target not in _container_ports(pod_spec)]
    return errors


def _pdb_rule(where: str, spec: dict[str, Any], index: _Index) -> list[str]:
    return [] if index.selected(spec["selector"].get("matchLabels", {})) else [f"{where}: selector matches no pod"]


def _network_policy_rule(where: str, spec: dict[str, Any], index: _Index) -> list[str]:
    selector = spec["podSelector"].get("matchLabels", {})
    if not selector:  # {} selects every pod of the namespace: the default deny and DNS policies
        return []
    return [] if index.selected(selector) else [f"{where}: podSelector matches no pod"]


def _hpa_rule(where: str, spec: dict[str, Any], index: _Index) -> list[str]:
    target = spec["scaleTargetRef"]
    if (target["kind"], target["name"]) in index.names:
        return []
    return [f"{where}: scaleTargetRef {target['kind']}/{target['name']} is not rendered"]


def _ingress_rule(where: str, spec: dict[str, Any], index: _Index) -> list[str]:
    errors = []
    for rule in spec.get("rules", []):
        for path in rule.get("http", {}).get("paths", []):
            backend = path["backend"]["service"]
            service = index.services.get(backend["name"])
            if service is None:
                errors.append(f"{where}: backend Service {backend['name']} is not rendered")
                continue
            port = backend["port"].get("name", backend["port"].get("number"))
            ports = {p.get("name") for p in service["spec"]["ports"]} | {p["port"] for p in service["spec"]["ports"]}
            if port not in ports:
                errors.append(f"{where}: Service {backend['name']} has no port {port!r}")
    return errors


def _service_monitor_rule(where: str, spec: dict[str, Any], index: _Index) -> list[str]:
    selector = spec["selector"].get("matchLabels", {})
    chosen = [s for s in index.services.values() if _matches(selector, s["metadata"].get("labels", {}))]
    errors = [] if chosen else [f"{where}: selects no Service"]
    for endpoint in spec.get("endpoints", []):
        if not any(endpoint.get("port") in {p.get("name") for p in s["spec"]["ports"]} for s in chosen):
            errors.append(f"{where}: no selected Service has a port named {endpoint.get('port')!r}")
    return errors


_RULES = {
    "Service": _service_rule,
    "PodDisruptionBudget": _pdb_rule,
    "NetworkPolicy": _network_policy_rule,
    "HorizontalPodAutoscaler": _hpa_rule,
    "Ingress": _ingress_rule,
    "ServiceMonitor": _service_monitor_rule,
}


def _pod_references(owner: str, pod_spec: dict[str, Any], index: _Index, external: set[str]) -> list[str]:
    """ConfigMaps, Secrets and the ServiceAccount a pod uses must be rendered (or made by someone else)."""
    wanted: list[tuple[str, str, str]] = []
    for container in pod_spec.get("containers", []) + pod_spec.get("initContainers", []):
        for source in container.get("envFrom", []):
            wanted += [("envFrom", kind, source[key]["name"])
                       for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")) if key in source]
    for volume in pod_spec.get("volumes", []):
        wanted += [("volume", kind, volume[key][field])
                   for kind, key, field in (("ConfigMap", "configMap", "name"), ("Secret", "secret", "secretName"))
                   if key in volume]
    if "serviceAccountName" in pod_spec:
        wanted.append(("", "ServiceAccount", pod_spec["serviceAccountName"]))
    return [f"{owner}: {f'{how} ' if how else ''}{kind} {name} is not rendered"
            for how, kind, name in wanted if (kind, name) not in index.names and name not in external]


def lint(objects: Sequence[Object]) -> list[str]:
    """References between objects that schemas cannot check."""
    index = _Index(
        pods=_pods(objects),
        names={(o["kind"], o["metadata"]["name"]) for o in objects},
        services={o["metadata"]["name"]: o for o in objects if o["kind"] == "Service"},
    )
    errors: list[str] = []
    for obj in objects:
        rule = _RULES.get(obj["kind"])
        if rule:
            errors += rule(f"{obj['kind']}/{obj['metadata']['name']}", obj.get("spec", {}), index)
    external = _external_secrets(objects)
    for owner, _, pod_spec in index.pods:
        errors += _pod_references(owner, pod_spec, index, external)
    return errors


# --- connectivity: what the catalog declares must be allowed by both sides' policies ----------


def _peer_admits(peer: dict[str, Any], labels: dict[str, str]) -> bool:
    """A same-namespace pod selector peer that selects ``labels`` (namespace and IP peers do not)."""
    if "namespaceSelector" in peer or "ipBlock" in peer or "podSelector" not in peer:
        return False
    selector = peer["podSelector"]
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items()) and all(
        labels.get(e["key"]) in e["values"] for e in selector.get("matchExpressions", []) if e["operator"] == "In")


def rules_allow(rules: list[dict[str, Any]], direction: str, labels: dict[str, str], port: Any) -> bool:
    """Whether any of ``rules`` (a policy's ingress or egress) lets ``labels`` pods through on ``port``."""
    key = "from" if direction == "ingress" else "to"
    return any(
        (not rule.get("ports") or port in [p["port"] for p in rule["ports"]])
        and any(_peer_admits(peer, labels) for peer in rule.get(key, []))
        for rule in rules
    )


def _policy_for(policies: list[Object], labels: dict[str, str]) -> list[Object]:
    return [p for p in policies if p["spec"]["podSelector"].get("matchLabels")
            and all(labels.get(k) == v for k, v in p["spec"]["podSelector"]["matchLabels"].items())]


def connectivity(objects: Sequence[Object], calls: Iterable[tuple[str, str]]) -> list[str]:
    """Each declared call (client service, server service) must pass both sides' NetworkPolicies.

    A service may run several Deployments (canary, blue and green): every pair must pass.
    """
    templates: dict[str, list[dict[str, Any]]] = {}
    for obj in objects:
        if obj["kind"] == "Deployment":
            template = obj["spec"]["template"]
            templates.setdefault(template["metadata"]["labels"].get("app.kubernetes.io/name", ""), []).append(template)
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    errors = []
    for client, server in calls:
        for client_template in templates.get(client, []):
            for server_template in templates.get(server, []):
                client_pods = client_template["metadata"]["labels"]
                server_pods = server_template["metadata"]["labels"]
                http = next(p for c in server_template["spec"]["containers"] for p in c["ports"] if p["name"] == "http")
                egress = [r for p in _policy_for(policies, client_pods) for r in p["spec"].get("egress", [])]
                ingress = [r for p in _policy_for(policies, server_pods) for r in p["spec"].get("ingress", [])]
                if not rules_allow(egress, "egress", server_pods, http["containerPort"]):
                    errors.append(f"NetworkPolicy: {client} may call {server} (catalog) but its egress does not "
                                  "allow it")
                if not rules_allow(ingress, "ingress", client_pods, "http"):
                    errors.append(f"NetworkPolicy: {client} may call {server} (catalog) but {server}'s ingress "
                                  "refuses it")
    return sorted(set(errors), key=errors.index)


def declared_calls() -> list[tuple[str, str]]:
    """(caller, callee) pairs the catalog declares."""
    return [(caller, name) for name in CATALOG for caller in CATALOG.callers_of(name)]


def validate_stack(stack: str, crd_folder: Path = DEFAULT_CRDS) -> Report:
    config, secrets = stack_config(stack)
    run = run_stack(stack, config, secrets)
    settings = load_settings(stack, {k.split(":", 1)[1]: yaml.safe_load(v) for k, v in config.items()
                                     if k.startswith("codai-platform:")}).settings
    versions = [settings.environment.kubernetes.min_version, settings.environment.kubernetes.max_version]
    objects = run.kubernetes_objects()
    errors, builtin, custom = schema_errors(objects, versions, load_crd_schemas(crd_folder))
    return Report(stack, builtin, custom, errors + lint(objects) + connectivity(objects, declared_calls()))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stacks", nargs="*", help="stacks (default: every Pulumi.<stack>.yaml)")
    parser.add_argument("--crds", type=Path, default=DEFAULT_CRDS, help="folder of upstream CRD manifests")
    options = parser.parse_args(argv)
    failed = False
    for stack in options.stacks or discover_stacks():
        report = validate_stack(stack, options.crds)
        errors = report.errors or []
        print(f"{stack}: {report.builtin_checked} built-in objects (strict, two Kubernetes versions), "
              f"{report.custom_checked} custom resources (CRD schemas), {len(errors)} error(s)")
        for error in errors:
            print(f"  - {error}")
        failed = failed or bool(errors)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""What CloudNativePG makes from the custom resources we render, as manifests the lint can read.

The operator (v1.29.1) makes pods and Services that no render contains; NetworkPolicies, metrics
Services and ServiceMonitors select them by the operator's labels. :func:`operator_objects` writes
them out from the CRs themselves, following the operator's source:

- for each ``Cluster``, one instance ``Pod`` ``<cluster>-1`` standing for every instance
  (pkg/specs/pods.go ``buildInstance``): ``cnpg.io/cluster``, ``cnpg.io/instanceName``,
  ``cnpg.io/podRole: instance`` and the ``app.kubernetes.io/*`` labels, then
  ``spec.inheritedMetadata.labels`` over them; ports postgresql 5432, metrics 9187, status 8000;
- for each ``Pooler``, the ``Deployment`` of its PgBouncers (pkg/specs/pgbouncer/deployments.go):
  ``spec.template`` with ``cnpg.io/poolerName``, ``cnpg.io/cluster: <spec.cluster.name>``,
  ``cnpg.io/podRole: pooler`` and the ``app.kubernetes.io/*`` labels over its labels; ports
  pgbouncer 5432, metrics 9127; and the ``Service`` of the Pooler's name selecting them on
  pgbouncer 5432 (pkg/specs/pgbouncer/services.go).

What the operator makes for itself (ServiceAccounts, TLS Secrets, its PDBs) is left out: nothing
we render refers to it. :func:`with_operator_objects` is the render as both tools/lint_objects.py
and tools/connectivity.py read it; :func:`secret_references` are the Secrets the CRs name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tools.rendered import Object, Pod, Rendered, namespace_of

#: The API group of the operator's custom resources (v1 at v1.29.1).
API_GROUP = "postgresql.cnpg.io"
CLUSTER_LABEL = "cnpg.io/cluster"
INSTANCE_NAME_LABEL = "cnpg.io/instanceName"
ROLE_LABEL = "cnpg.io/podRole"
POOLER_LABEL = "cnpg.io/poolerName"
#: ``utils.AppName`` and ``utils.ManagerName`` of pkg/utils/labels_annotations.go.
APP_LABELS = {"app.kubernetes.io/name": "postgresql", "app.kubernetes.io/managed-by": "cloudnative-pg"}
INSTANCE_PORTS = {"postgresql": 5432, "metrics": 9187, "status": 8000}
PGBOUNCER_PORTS = {"pgbouncer": 5432, "metrics": 9127}
#: The instance port a PgBouncer connects to (the Cluster's ``-rw`` Service forwards to it).
UPSTREAM_PORT = "postgresql"


def _is(obj: Object, kind: str) -> bool:
    return obj.get("kind") == kind and str(obj.get("apiVersion", "")).startswith(f"{API_GROUP}/")


def _ports(ports: Mapping[str, int]) -> list[dict[str, Any]]:
    return [{"name": name, "containerPort": number, "protocol": "TCP"} for name, number in ports.items()]


def _meta(obj: Object, name: str) -> dict[str, Any]:
    return {"name": name, "namespace": namespace_of(obj)}


def instance_pod(cluster: Object) -> Object:
    """The first instance of ``cluster``, as the operator creates it."""
    name, spec = str(cluster["metadata"]["name"]), cluster.get("spec") or {}
    labels = {CLUSTER_LABEL: name, INSTANCE_NAME_LABEL: f"{name}-1", ROLE_LABEL: "instance", **APP_LABELS,
              "app.kubernetes.io/instance": name, "app.kubernetes.io/component": "database",
              **((spec.get("inheritedMetadata") or {}).get("labels") or {})}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {**_meta(cluster, f"{name}-1"), "labels": labels},
            "spec": {"containers": [{"name": "postgres", "ports": _ports(INSTANCE_PORTS)}]}}


def pooler_objects(pooler: Object) -> list[Object]:
    """The Deployment of ``pooler``'s PgBouncers and the Service of its name."""
    name, spec = str(pooler["metadata"]["name"]), pooler.get("spec") or {}
    cluster = str((spec.get("cluster") or {}).get("name"))
    template = spec.get("template") or {}
    operator = {POOLER_LABEL: name, CLUSTER_LABEL: cluster, ROLE_LABEL: "pooler", **APP_LABELS,
                "app.kubernetes.io/instance": cluster, "app.kubernetes.io/component": "pooler"}
    labels = {**((template.get("metadata") or {}).get("labels") or {}), **operator}
    pod_spec = dict(template.get("spec") or {})
    pod_spec.pop("serviceAccountName", None)  # the operator sets its own, which it makes
    containers = [dict(c) for c in pod_spec.get("containers") or []]
    if not any(c.get("name") == "pgbouncer" for c in containers):
        containers.append({"name": "pgbouncer"})
    pod_spec["containers"] = [{**c, "ports": _ports(PGBOUNCER_PORTS)} if c.get("name") == "pgbouncer" else c
                              for c in containers]
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment",
                  "metadata": {**_meta(pooler, name), "labels": operator},
                  "spec": {"replicas": spec.get("instances", 1), "selector": {"matchLabels": {POOLER_LABEL: name}},
                           "template": {"metadata": {"labels": labels}, "spec": pod_spec}}}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {**_meta(pooler, name), "labels": operator},
               "spec": {"type": "ClusterIP", "selector": {POOLER_LABEL: name},
                        "ports": [{"name": "pgbouncer", "port": PGBOUNCER_PORTS["pgbouncer"],
                                   "targetPort": "pgbouncer", "protocol": "TCP"}]}}
    return [deployment, service]


def operator_objects(objects: Sequence[Object]) -> list[Object]:
    """The pods and Services the operator makes for the Clusters and Poolers among ``objects``."""
    made: list[Object] = []
    for obj in objects:
        if _is(obj, "Cluster"):
            made.append(instance_pod(obj))
        elif _is(obj, "Pooler"):
            made += pooler_objects(obj)
    return made


def with_operator_objects(objects: Sequence[Object]) -> Rendered:
    """The render indexed together with what the operator makes of it."""
    return Rendered([*objects, *operator_objects(objects)])


def is_pgbouncer(pod: Pod) -> bool:
    return pod.labels.get(ROLE_LABEL) == "pooler" and POOLER_LABEL in pod.labels


def upstream(rendered: Rendered, pgbouncer: Pod) -> list[Pod]:
    """The instances a PgBouncer connects to: its Cluster's, in its namespace."""
    return [pod for pod in rendered.pods if pod.namespace == pgbouncer.namespace
            and pod.labels.get(ROLE_LABEL) == "instance"
            and pod.labels.get(CLUSTER_LABEL) == pgbouncer.labels.get(CLUSTER_LABEL)]


def _store_secrets(where: str, store: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """The Secrets a ``barmanObjectStore`` reads its credentials from."""
    found = [(f"{where} {section}", str(value["name"]))
             for section in ("s3Credentials", "azureCredentials", "googleCredentials")
             for value in ((store or {}).get(section) or {}).values() if isinstance(value, Mapping) and "name" in value]
    return list(dict.fromkeys(found))  # one Secret usually holds every key of a section


def secret_references(obj: Object) -> list[tuple[str, str]]:
    """(how, name) of every Secret a Cluster or Pooler names: roles' passwords, object-store credentials."""
    spec = obj.get("spec") or {}
    if _is(obj, "Pooler"):
        secret = (spec.get("pgbouncer") or {}).get("authQuerySecret")
        return [("pgbouncer authQuerySecret", str(secret["name"]))] if secret else []
    if not _is(obj, "Cluster"):
        return []
    found = [(f"role {role.get('name')} passwordSecret", str(role["passwordSecret"]["name"]))
             for role in (spec.get("managed") or {}).get("roles") or [] if role.get("passwordSecret")]
    found += _store_secrets("backup", (spec.get("backup") or {}).get("barmanObjectStore"))
    for external in spec.get("externalClusters") or []:
        found += _store_secrets(f"externalCluster {external.get('name')}", external.get("barmanObjectStore"))
    return found

"""What a stack put on the local cluster, and where: printed by ``make up`` after the deploy."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Sequence

from tools.cluster.local_cluster import LocalCluster
from tools.cluster.toolchain import toolchain
from tools.offline import stack_plan

#: Kinds listed per namespace (the custom resources included), in the order people look for them.
KINDS = ("deployments", "statefulsets", "jobs", "cronjobs", "pods", "services", "ingresses", "configmaps", "secrets",
         "persistentvolumeclaims", "horizontalpodautoscalers", "poddisruptionbudgets", "networkpolicies",
         "roles", "rolebindings", "serviceaccounts", "resourcequotas", "limitranges", "servicemonitors",
         "prometheusrules", "alertmanagerconfigs", "certificates", "clusters.postgresql.cnpg.io",
         "poolers.postgresql.cnpg.io", "databases.postgresql.cnpg.io", "scheduledbackups.postgresql.cnpg.io")


def report(stack: str) -> str:
    cluster = LocalCluster()
    namespace = stack_plan(stack).settings.environment.namespace
    items = json.loads(cluster.kubectl("get", ",".join(KINDS), "-n", namespace, "-o", "json"))["items"]
    by_kind = Counter(item["kind"] for item in items)
    workloads = [item for item in items if item["kind"] in ("Deployment", "StatefulSet")]
    ready = sum(1 for item in workloads
                if item["status"].get("readyReplicas", 0) >= item["spec"].get("replicas", 1))
    pods = sum(1 for item in items if item["kind"] == "Pod" and item["status"].get("phase") == "Running")
    hosts = sorted({rule["host"] for item in items if item["kind"] == "Ingress" for rule in item["spec"]["rules"]})
    lines = [
        f"stack {stack} on the local cluster, namespace {namespace}:",
        f"  {ready}/{len(workloads)} Deployments and StatefulSets ready, {pods} pods running",
        "  " + ", ".join(f"{count} {kind}" for kind, count in sorted(by_kind.items())),
        f"  {len(hosts)} public hosts, e.g. https://{hosts[0]}" if hosts else "  no public hosts",
        f"  kubectl: {toolchain().kubectl} --kubeconfig {cluster.kubeconfig} get pods -n {namespace}",
        "  `make down` destroys it and stops the cluster",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    print(report(args[0] if args else "staging"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

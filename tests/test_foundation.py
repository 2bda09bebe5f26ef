"""The shared foundation of every stack: namespace, Pod Security, quota, default deny, RBAC, priorities."""

from __future__ import annotations

from services import Tier


def test_namespace_enforces_restricted_pod_security_pinned_to_the_oldest_version(any_stack):
    namespace = any_stack.get("Namespace", any_stack.outputs["namespace"])
    labels = namespace["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
        assert labels[f"pod-security.kubernetes.io/{mode}-version"] == "v1.30"


def test_namespace_is_never_deleted_and_protected_in_production(staging, production):
    prod_ns = production.resource("Namespace", "codai")
    assert prod_ns.protect and prod_ns.retain_on_delete
    staging_ns = staging.resource("Namespace", "codai-staging")
    assert staging_ns.retain_on_delete and not staging_ns.protect


def test_quota_and_limit_range_follow_the_sizing_profile(staging, production):
    assert staging.get("ResourceQuota", "codai-quota")["spec"]["hard"] == {
        "requests.cpu": "16", "requests.memory": "32Gi", "limits.memory": "64Gi",
        "requests.storage": "200Gi", "pods": "150", "persistentvolumeclaims": "20"}
    assert production.get("ResourceQuota", "codai-quota")["spec"]["hard"]["requests.cpu"] == "64"
    [limit] = production.get("LimitRange", "codai-limits")["spec"]["limits"]
    assert limit["type"] == "Container" and limit["defaultRequest"] and limit["default"]


def test_default_deny_in_both_directions_with_dns_allowed(any_stack):
    deny = any_stack.get("NetworkPolicy", "default-deny-all")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    dns = any_stack.get("NetworkPolicy", "allow-dns-egress")["spec"]
    assert dns["policyTypes"] == ["Egress"] and "ingress" not in dns
    [rule] = dns["egress"]
    assert {p["port"] for p in rule["ports"]} == {53}
    assert rule["to"][0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "kube-system"}


def test_rbac_has_no_wildcards_and_viewers_cannot_read_secrets(any_stack):
    roles = {r["metadata"]["name"]: r for r in any_stack.of_kind("Role")}
    assert set(roles) >= {"codai-deployer", "codai-viewer"}
    for role in roles.values():
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] and "*" not in rule["resources"] and "*" not in rule["apiGroups"]
    viewer_resources = {res for rule in roles["codai-viewer"]["rules"] for res in rule["resources"]}
    assert "secrets" not in viewer_resources
    viewer_verbs = {verb for rule in roles["codai-viewer"]["rules"] for verb in rule["verbs"]}
    assert viewer_verbs == {"get", "list", "watch"}
    binding = any_stack.get("RoleBinding", "codai-deployer")
    assert binding["roleRef"]["name"] == "codai-deployer"
    assert binding["subjects"] == [
        {"kind": "Group", "name": "codai:deployers", "apiGroup": "rbac.authorization.k8s.io"}]


def test_a_priority_class_per_tier_ordered_by_importance(any_stack):
    namespace = any_stack.outputs["namespace"]
    values = {tier: any_stack.get("PriorityClass", f"{namespace}-{tier.value}")["value"] for tier in Tier}
    assert values[Tier.CORE] > values[Tier.BUSINESS] > values[Tier.SUPPORT]
    assert values == {Tier.CORE: 100_000, Tier.BUSINESS: 10_000, Tier.SUPPORT: 1_000}


#: Objects outside the deployer Role on purpose (docs/security.md): RBAC itself, and the quota and
#: limits that bound the deployer, are changed with an administrator's credentials.
ADMINISTERED = {"Namespace", "PriorityClass", "Role", "RoleBinding", "ResourceQuota", "LimitRange"}


def test_the_deployer_manages_and_viewers_read_every_other_kind_the_stack_renders(any_stack):
    roles = {r["metadata"]["name"]: r["rules"] for r in any_stack.of_kind("Role")}

    def allowed(role: str, api_version: str, plural: str) -> set[str]:
        group = api_version.rpartition("/")[0]
        return {verb for rule in roles[role] if group in rule["apiGroups"] and plural in rule["resources"]
                for verb in rule["verbs"]}

    rendered = {(o["apiVersion"], o["kind"]) for o in any_stack.kubernetes_objects()}
    assert {kind for _, kind in rendered} >= {"StatefulSet", "Cluster", "Pooler", "Database", "ScheduledBackup",
                                             "PrometheusRule", "AlertmanagerConfig"}
    for api_version, kind in sorted(rendered):
        if kind in ADMINISTERED:
            continue
        plural = kind.lower() + ("es" if kind.endswith(("s", "ss")) else "s")
        plural = {"NetworkPolicy": "networkpolicies"}.get(kind, plural)
        assert allowed("codai-deployer", api_version, plural) >= {"get", "create", "patch", "delete"}, kind
        if kind != "Secret":
            assert allowed("codai-viewer", api_version, plural) >= {"get", "list", "watch"}, kind

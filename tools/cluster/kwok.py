"""What kwok plays: the nodes (three zones, two hosts each) and the Stages their pods go through."""

from __future__ import annotations

from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
#: Nodes in three zones, two hosts each: production spreads every service over zones and hosts.
NODES = [(f"codai-node-{zone}{host}", f"zone-{zone}") for zone in "abc" for host in (1, 2)]
#: Pods with a container image tagged ``*-never-ready`` are left unready (stages.yaml).
BROKEN_IMAGE_TAG_SUFFIX = "-never-ready"
BROKEN_IMAGE_EXCLUDED = {
    "cel": {"expression": f"!self.spec.containers.exists(c, c.image.endsWith('{BROKEN_IMAGE_TAG_SUFFIX}'))"},
}


def node_manifests() -> str:
    """The Node objects kwok manages (annotated ``kwok.x-k8s.io/node: fake``), as one YAML stream."""
    documents = [f"""apiVersion: v1
kind: Node
metadata:
  name: {name}
  annotations: {{kwok.x-k8s.io/node: fake}}
  labels:
    kubernetes.io/hostname: {name}
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    topology.kubernetes.io/zone: {zone}
    type: kwok
""" for name, zone in NODES]
    return "---\n".join(documents)


def kwok_stages(upstream: Path) -> str:
    """kwok's own Stages, then ours (an Ingress gets an address; a broken image never gets Ready).

    kwok picks at random among the Stages that match, so upstream's pod-ready is kept from
    matching the pods that ours leaves unready.
    """
    ours = [doc for doc in yaml.safe_load_all((HERE / "stages.yaml").read_text()) if doc]
    documents = []
    for path in sorted(upstream.glob("*.yaml")):
        stage = yaml.safe_load(path.read_text())
        if stage["metadata"]["name"] == "pod-ready":
            stage["spec"]["selector"]["matchExpressions"].append(BROKEN_IMAGE_EXCLUDED)
        documents.append(stage)
    return yaml.safe_dump_all([*documents, *ours], sort_keys=False)

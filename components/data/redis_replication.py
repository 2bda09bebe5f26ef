"""Replicated Redis under Sentinel: what the Redis component adds when it runs more than one server.

Each server pod also runs a sentinel and the sentinel's exporter, so a node lost takes one
server and one sentinel, and a majority of sentinels remains to elect a new master. Sentinel
is the engine (failure detection, election, repointing replicas); this module only puts the
files of ``sentinel_files.py`` into the pods:

- a Secret ``<name>-replication`` with, per pod, its replication lines (``<pod>.conf``) and its
  sentinel's configuration (``<pod>.sentinel.conf``), both holding passwords;
- the server starts from the ConfigMap's ``redis.conf`` followed by its own replication lines,
  the sentinel from its own file, each copied to ``/tmp`` because Sentinel rewrites them as it
  learns. A restarted pod starts from the generated files again; the sentinels then repoint it
  (a returning master becomes a replica; ``min-replicas-to-write`` keeps it from taking writes
  before that).

Clients are handed the sentinels' addresses and the master's name (``discovery_env``), never a
server address: any server may be the master after a failover.
"""

from __future__ import annotations

from collections.abc import Mapping
from operator import itemgetter

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.core.v1 import ContainerArgsDict, ProbeArgsDict, VolumeArgsDict, VolumeMountArgsDict

from components.data import acl, sentinel_files
from components.data.pod_parts import Port, container, secret_volume
from components.data.provider import AnyDataComponent
from components.data.sentinel_files import Address, SentinelGroup
from components.data.server import Peering, headless_name
from components.scraping import METRICS_PORT_NAME, MonitoredWorkload, ScrapeEndpoint, service_monitor
from settings.data import SENTINEL_RESOURCES

SENTINEL_PORT = Port("sentinel", sentinel_files.SENTINEL_PORT)
SENTINEL_METRICS_PORT = Port("sentinel-metric", 9355)
#: Where each pod finds its own generated files (a Secret volume).
FILES_DIR = "/run/codai/replication"
FILES_MOUNT: VolumeMountArgsDict = {"name": "replication", "mount_path": FILES_DIR, "read_only": True}
#: The writable copies: the pod's ``/tmp`` (an emptyDir), which Redis and Sentinel may rewrite.
RUN_DIR = "/tmp"
#: The ``app.kubernetes.io/component`` of the sentinels' metrics Service.
SENTINEL_METRICS = "sentinel-metrics"


def group(component: AnyDataComponent) -> SentinelGroup:
    """The servers and their sentinels, by their pods' stable DNS names; the first starts as master."""
    count = component.sizing.instances
    hosts = [f"{component.name}-{i}.{headless_name(component)}.{component.namespace}.svc" for i in range(count)]
    return SentinelGroup(
        master_name=component.name,
        instances=tuple(Address(host, component.port.number) for host in hosts),
        sentinels=tuple(Address(host, SENTINEL_PORT.number) for host in hosts),
        quorum=count // 2 + 1,
    )


def peering(component: AnyDataComponent) -> Peering:
    """Replicas reach the master, sentinels reach every server and each other; clients ask sentinels."""
    return Peering(ports=(component.port, SENTINEL_PORT), client_ports=(SENTINEL_PORT,),
                   metrics_ports=(SENTINEL_METRICS_PORT,))


def file_keys(component: AnyDataComponent) -> list[str]:
    """The Secret's keys: each pod's (``hostname``) replication lines and sentinel configuration."""
    pods = [f"{component.name}-{index}" for index in range(component.sizing.instances)]
    return [*(f"{pod}.conf" for pod in pods), *(f"{pod}.sentinel.conf" for pod in pods)]


def files(component: AnyDataComponent, passwords: Mapping[str, str]) -> dict[str, str]:
    """Every pod's replication lines and sentinel.conf, by Secret key."""
    sentinels = group(component)
    services = [spec.name for spec in component.clients]
    texts: dict[str, str] = {}
    for index, server in enumerate(sentinels.instances):
        pod = f"{component.name}-{index}"
        texts[f"{pod}.conf"] = sentinel_files.replication_conf(sentinels, index, passwords, announce_host=server.host)
        texts[f"{pod}.sentinel.conf"] = sentinel_files.sentinel_conf(
            sentinels, index, passwords, services, data_dir=RUN_DIR, observers=[sentinel_files.exporter_user()])
    return texts


def files_secret(component: AnyDataComponent, texts: pulumi.Output[dict[str, str]]) -> k8s.core.v1.Secret:
    """``texts`` is ``files()`` once the passwords are known."""
    return component.secret("replication-secret", f"{component.name}-replication", "replication",
                            {key: texts.apply(itemgetter(key)) for key in file_keys(component)})


def files_volume(component: AnyDataComponent) -> VolumeArgsDict:
    return secret_volume("replication", f"{component.name}-replication", {key: key for key in file_keys(component)})


def server_command(config_file: str) -> list[str]:
    """The server's ``redis.conf`` followed by this pod's replication lines, as a writable copy."""
    return ["sh", "-c", f'cat {config_file} "{FILES_DIR}/$(hostname).conf" > {RUN_DIR}/redis.conf '
            f"&& exec redis-server {RUN_DIR}/redis.conf"]


def sentinel_containers(component: AnyDataComponent, image: str, exporter_image: str) -> list[ContainerArgsDict]:
    """The sentinel beside each server, and the exporter that reports whether the sentinels have a quorum."""
    # Sentinel answers only to its users (``default`` is off): a TCP check says it is up.
    tcp: ProbeArgsDict = {"tcp_socket": {"port": SENTINEL_PORT.name}, "period_seconds": 10, "timeout_seconds": 5,
                          "failure_threshold": 6}
    sentinel = container(
        "sentinel", image, SENTINEL_RESOURCES,
        command=["sh", "-c", f'cp "{FILES_DIR}/$(hostname).sentinel.conf" {RUN_DIR}/sentinel.conf '
                 f"&& exec redis-sentinel {RUN_DIR}/sentinel.conf"],
        ports=[SENTINEL_PORT],
        mounts=[FILES_MOUNT],
        probes={"liveness": tcp, "readiness": {**tcp, "period_seconds": 5, "failure_threshold": 3}},
    )
    page: ProbeArgsDict = {"http_get": {"path": "/", "port": SENTINEL_METRICS_PORT.name}, "period_seconds": 20,
                           "timeout_seconds": 5, "failure_threshold": 3}
    exporter = container(
        "sentinel-exporter", exporter_image, SENTINEL_RESOURCES,
        env={"REDIS_ADDR": f"redis://localhost:{SENTINEL_PORT.number}", "REDIS_USER": acl.EXPORTER_USER,
             "REDIS_EXPORTER_WEB_LISTEN_ADDRESS": f":{SENTINEL_METRICS_PORT.number}"},
        secret_env=[{"name": "REDIS_PASSWORD", "value_from": {"secret_key_ref": {
            "name": f"{component.name}-users", "key": acl.EXPORTER_USER}}}],
        ports=[SENTINEL_METRICS_PORT],
        probes={"liveness": page, "readiness": {**page, "period_seconds": 10}},
    )
    return [sentinel, exporter]


def sentinel_monitoring(component: AnyDataComponent) -> None:
    """The sentinels' metrics Service and its ServiceMonitor (the quorum alert reads them)."""
    name = f"{component.name}-{SENTINEL_METRICS}"
    k8s.core.v1.Service(
        f"{name}-service", metadata=component.meta(name, SENTINEL_METRICS),
        spec={"type": "ClusterIP", "selector": component.pod_selector(component.role),
              "ports": [{"name": METRICS_PORT_NAME, "port": SENTINEL_METRICS_PORT.number,
                         "target_port": SENTINEL_METRICS_PORT.name, "protocol": "TCP"}]},
        opts=component.child_opts(),
    )
    workload = MonitoredWorkload(name, component.namespace, component.labels(SENTINEL_METRICS),
                                 component.pod_selector(SENTINEL_METRICS))
    service_monitor(f"{name}-service-monitor", workload, ScrapeEndpoint(), component.args.scraping,
                    component.child_opts())


def discovery_env(component: AnyDataComponent, service: str) -> dict[str, str]:
    """What a client is handed instead of a server address: the sentinels, the master's name, its user."""
    return sentinel_files.client_env(sentinel_files.discovery_for(group(component), service))

"""The hardened pod and container: the one recipe every workload (service, data server, job) starts from.

Pod Security Admission ``restricted`` asks for what these set: non-root, the runtime's seccomp
profile, no privilege escalation, every capability dropped. Beyond it, the root filesystem is
read-only (a writable ``/tmp`` is mounted instead), pods carry no Kubernetes API token and no
service links, and every container states its requests and limits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pulumi import Input
from pulumi_kubernetes.core.v1 import (
    ContainerArgsDict,
    PodSpecArgsDict,
    ResourceRequirementsArgsDict,
    VolumeArgsDict,
    VolumeMountArgsDict,
)

from components.security import container_security_context, pod_security_context
from settings.quantities import Cpu, Memory

#: The writable scratch volume of every pod, mounted at /tmp in every container.
TMP_VOLUME = "tmp"


class Sized(Protocol):
    """Anything with decided requests and limits (a service's plan, a data container's size)."""

    @property
    def cpu_request(self) -> Cpu: ...
    @property
    def memory_request(self) -> Memory: ...
    @property
    def cpu_limit(self) -> Cpu: ...
    @property
    def memory_limit(self) -> Memory: ...


def resources(size: Sized) -> ResourceRequirementsArgsDict:
    return {
        "requests": {"cpu": str(size.cpu_request), "memory": str(size.memory_request)},
        "limits": {"cpu": str(size.cpu_limit), "memory": str(size.memory_limit)},
    }


def hardened_container(name: str, image: str, size: Sized,
                       mounts: Sequence[VolumeMountArgsDict] = ()) -> ContainerArgsDict:
    """A container that runs as the restricted user on a read-only root, with /tmp and ``mounts``.

    The image is pulled on every start: a tag moved in the registry cannot leave nodes running
    different code under the same name.
    """
    return {
        "name": name,
        "image": image,
        "image_pull_policy": "Always",
        "resources": resources(size),
        "security_context": container_security_context(),
        "volume_mounts": [{"name": TMP_VOLUME, "mount_path": "/tmp"}, *mounts],
    }


def hardened_pod_spec(service_account_name: Input[str], containers: Sequence[ContainerArgsDict], *, tmp_size: str,
                      volumes: Sequence[VolumeArgsDict] = (), walk_volumes_on_start: bool = True) -> PodSpecArgsDict:
    """A pod of the workload's own ServiceAccount, without its API token (nothing here calls the API).

    ``walk_volumes_on_start=False`` changes a volume's group only when its root does not match: a
    large database volume is then not walked file by file on every start.
    """
    security = pod_security_context()
    if not walk_volumes_on_start:
        security["fs_group_change_policy"] = "OnRootMismatch"
    return {
        "service_account_name": service_account_name,
        "automount_service_account_token": False,
        "enable_service_links": False,
        "security_context": security,
        "containers": list(containers),
        "volumes": [{"name": TMP_VOLUME, "empty_dir": {"size_limit": tmp_size}}, *volumes],
    }

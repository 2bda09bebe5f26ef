"""The project's embedded cluster: a Kubernetes control plane on 127.0.0.1, with fake nodes.

etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok, each a process of
ours started here and stopped by its PID; the certificates made with openssl; everything in
one state folder that :meth:`LocalCluster.stop` removes. The API server runs what a real one
would for these stacks: RBAC, the admission plugins PodSecurity, LimitRanger, ResourceQuota
and Priority, the vendored CRDs (prometheus-operator, cert-manager, CloudNativePG). kwok plays the kubelets:
pods become Running and Ready (unless their image is marked broken, see ``stages.yaml``), Job
pods Succeed, claims are bound, Ingresses get an address.

    python -m tools.cluster.local_cluster start | stop | status
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from tools.cluster.kwok import NODES, kwok_stages, node_manifests
from tools.cluster.pki import Pki
from tools.cluster.processes import alive, port_open, stop_pid
from tools.cluster.toolchain import CLUSTER_TOOLS, ROOT, Toolchain, require_tools

#: The state folder: certificates, etcd's data, logs, PID files, the kubeconfig.
STATE = Path(os.environ.get("CODAI_CLUSTER_DIR", Path(os.environ.get("TMPDIR", "/tmp")) / "codai-cluster"))
CRDS = ROOT / "vendor" / "crds"
#: Ports of our own, away from the usual ones, so a cluster here never meets another.
PORTS = {"etcd": 16379, "etcd-peer": 16380, "apiserver": 16443,
         "controller-manager": 16257, "scheduler": 16259, "kwok": 16280}
SERVICE_RANGE = "10.96.0.0/16"
POD_RANGE = "10.244.0.0/16"
#: Started in this order, stopped in the reverse one.
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")


def say(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} [cluster] {message}", flush=True)


class ClusterError(RuntimeError):
    pass


class LocalCluster:
    def __init__(self, state: Path = STATE) -> None:
        self.state = state
        self.pki = Pki(state / "pki")
        self.kubeconfig = state / "kubeconfig"
        self.logs = state / "logs"
        self.pids = state / "pids"
        #: The processes this object started, while it waits for them.
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        if self.running():
            say(f"already running (kubeconfig {self.kubeconfig})")
            return
        tools = require_tools(*CLUSTER_TOOLS)
        self.stop(quiet=True)  # what a crashed run left behind
        self._check_ports_free()
        for folder in (self.logs, self.pids):
            folder.mkdir(parents=True, exist_ok=True)
        say(f"starting in {self.state}")
        self._children = {}
        try:
            self._start(tools)
        except BaseException:
            self._stop_processes(quiet=True)  # nothing left running; the logs stay for a look
            raise

    def _start(self, tools: Toolchain) -> None:
        started = time.monotonic()
        self.pki.make(service_ip=_first_ip(SERVICE_RANGE))
        self._write_kubeconfig()
        self._spawn("etcd", self._etcd_args(tools))
        self._wait("etcd", lambda: port_open(PORTS["etcd"]))
        self._spawn("kube-apiserver", self._apiserver_args(tools))
        self._wait("kube-apiserver", lambda: self._kubectl_ok("get", "--raw", "/readyz"), timeout=120)
        self._spawn("kube-controller-manager", self._controller_manager_args(tools))
        self._spawn("kube-scheduler", self._scheduler_args(tools))
        self._spawn("kwok", self._kwok_args(tools))
        self._apply_nodes()
        self.kubectl("apply", "-f", str(tools.kwok_storage_class))
        self.kubectl("apply", "--server-side", "-f", str(CRDS), "--recursive")
        # `kubectl wait` errors out on a CRD whose status has no conditions yet: ask again.
        self._wait("the CRDs", lambda: self._kubectl_ok("wait", "--for=condition=Established", "crd", "--all",
                                                        "--timeout=10s"))
        self._wait("nodes Ready", self._nodes_ready)
        self._wait("the controllers", lambda: self._kubectl_ok("get", "serviceaccount", "default", "-n", "default"))
        say(f"ready in {time.monotonic() - started:.1f} s: {len(NODES)} nodes; KUBECONFIG={self.kubeconfig}")

    def stop(self, quiet: bool = False) -> None:
        """Stop every process by its PID, newest first, then remove the state folder."""
        self._stop_processes(quiet)
        if self.state.exists():
            subprocess.run(["rm", "-rf", str(self.state)], check=True)
        if not quiet:
            say("stopped; state removed")

    def _stop_processes(self, quiet: bool) -> None:
        for name in reversed(COMPONENTS):
            pid_file = self.pids / f"{name}.pid"
            child = self._children.pop(name, None)
            if child is not None:  # started by this object: no doubt whose it is
                child.terminate()
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
                stopped = True
            elif pid_file.exists():
                stopped = stop_pid(int(pid_file.read_text()), name)
            else:
                continue
            if stopped and not quiet:
                say(f"stopped {name}")
            pid_file.unlink(missing_ok=True)

    def running(self) -> bool:
        return all(alive(self.pids / f"{name}.pid") for name in COMPONENTS)

    def status(self) -> str:
        lines = [f"{name}: {'running' if alive(self.pids / f'{name}.pid') else 'stopped'}" for name in COMPONENTS]
        return "\n".join(lines)

    # --- kubectl --------------------------------------------------------------------------------

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        tools = require_tools("kubectl")
        result = subprocess.run([str(tools.kubectl), f"--kubeconfig={self.kubeconfig}", *args],
                                check=False, capture_output=True, text=True, input=stdin)
        if result.returncode != 0:
            raise ClusterError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout

    def _kubectl_ok(self, *args: str) -> bool:
        try:
            self.kubectl(*args)
        except ClusterError:
            return False
        return True

    # --- the processes -------------------------------------------------------------------------

    def _spawn(self, name: str, args: Sequence[str]) -> None:
        log = (self.logs / f"{name}.log").open("w")
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
        (self.pids / f"{name}.pid").write_text(str(process.pid))
        self._children[name] = process
        say(f"{name} started (pid {process.pid}, log {self.logs / f'{name}.log'})")

    def _wait(self, what: str, ready: Callable[[], bool], timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            for name, process in self._children.items():
                if process.poll() is not None:
                    tail = (self.logs / f"{name}.log").read_text().splitlines()[-15:]
                    raise ClusterError(f"{name} exited while waiting for {what}; its log ends:\n" + "\n".join(tail))
            if time.monotonic() > deadline:
                raise ClusterError(f"{what} not ready after {timeout:.0f} s (logs in {self.logs})")
            time.sleep(0.3)

    def _etcd_args(self, tools: Toolchain) -> list[str]:
        client, peer = f"http://127.0.0.1:{PORTS['etcd']}", f"http://127.0.0.1:{PORTS['etcd-peer']}"
        return [str(tools.etcd), "--name=codai", f"--data-dir={self.state / 'etcd'}",
                f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=codai={peer}", "--auto-compaction-retention=1",
                # A throw-away cluster: durability is not worth an fsync per write.
                "--unsafe-no-fsync=true"]

    def _apiserver_args(self, tools: Toolchain) -> list[str]:
        pki = self.pki.path
        return [str(tools.kube_apiserver),
                f"--etcd-servers=http://127.0.0.1:{PORTS['etcd']}",
                "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={PORTS['apiserver']}",
                f"--tls-cert-file={pki('apiserver.crt')}", f"--tls-private-key-file={pki('apiserver.key')}",
                f"--client-ca-file={pki('ca.crt')}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={pki('sa.pub')}", f"--service-account-signing-key-file={pki('sa.key')}",
                f"--service-cluster-ip-range={SERVICE_RANGE}",
                "--authorization-mode=Node,RBAC",
                # What a managed cluster runs; PodSecurity, LimitRanger, ResourceQuota and Priority
                # are the ones these stacks lean on.
                "--enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,PodSecurity,Priority,"
                "DefaultTolerationSeconds,DefaultStorageClass,StorageObjectInUseProtection,ResourceQuota,"
                "MutatingAdmissionWebhook,ValidatingAdmissionWebhook",
                # Only loopback is there: no endpoint of the `kubernetes` Service to keep up to date.
                "--endpoint-reconciler-type=none"]

    def _controller_manager_args(self, tools: Toolchain) -> list[str]:
        kubeconfig = f"{self.kubeconfig}"
        return [str(tools.kube_controller_manager),
                f"--kubeconfig={kubeconfig}", f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1", f"--secure-port={PORTS['controller-manager']}",
                "--leader-elect=false", "--controllers=*",
                f"--service-account-private-key-file={self.pki.path('sa.key')}",
                f"--root-ca-file={self.pki.path('ca.crt')}", "--use-service-account-credentials=false",
                f"--cluster-cidr={POD_RANGE}", f"--service-cluster-ip-range={SERVICE_RANGE}",
                "--kube-api-qps=200", "--kube-api-burst=400",
                # Quota usage and HPA status soon after a change, not after the default periods.
                "--resource-quota-sync-period=10s", "--horizontal-pod-autoscaler-sync-period=5s"]

    def _scheduler_args(self, tools: Toolchain) -> list[str]:
        kubeconfig = f"{self.kubeconfig}"
        return [str(tools.kube_scheduler),
                f"--kubeconfig={kubeconfig}", f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1", f"--secure-port={PORTS['scheduler']}", "--leader-elect=false"]

    def _kwok_args(self, tools: Toolchain) -> list[str]:
        stages = self.state / "stages.yaml"
        stages.write_text(kwok_stages(tools.kwok_stages))
        return [str(tools.kwok), f"--kubeconfig={self.kubeconfig}", f"--config={stages}",
                "--manage-all-nodes=false", "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                f"--cidr={POD_RANGE}", "--node-ip=127.0.0.1", "--node-lease-duration-seconds=40",
                f"--server-address=127.0.0.1:{PORTS['kwok']}"]

    # --- contents ------------------------------------------------------------------------------

    def _write_kubeconfig(self) -> None:
        pki = self.pki.path
        self.kubeconfig.write_text(f"""apiVersion: v1
kind: Config
clusters:
- name: codai-local
  cluster:
    server: https://127.0.0.1:{PORTS['apiserver']}
    certificate-authority: {pki('ca.crt')}
users:
- name: codai-local-admin
  user:
    client-certificate: {pki('admin.crt')}
    client-key: {pki('admin.key')}
contexts:
- name: codai-local
  context: {{cluster: codai-local, user: codai-local-admin}}
current-context: codai-local
""")

    def _apply_nodes(self) -> None:
        self.kubectl("apply", "-f", "-", stdin=node_manifests())

    def _nodes_ready(self) -> bool:
        out = self.kubectl("get", "nodes", "-o",
                           "jsonpath={range .items[*]}{.status.conditions[?(@.type=='Ready')].status}{'\\n'}{end}")
        return out.split() == ["True"] * len(NODES)

    def _check_ports_free(self) -> None:
        if busy := [f"{name} ({port})" for name, port in PORTS.items() if port_open(port)]:
            raise ClusterError(f"ports in use: {', '.join(busy)}; is another cluster running? "
                               f"`python -m tools.cluster.local_cluster stop` stops ours")


def _first_ip(cidr: str) -> str:
    network = cidr.split("/", maxsplit=1)[0].rsplit(".", 1)[0]
    return f"{network}.1"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.cluster.local_cluster", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["start", "stop", "status"])
    action = parser.parse_args(argv).action
    cluster = LocalCluster()
    try:
        if action == "start":
            cluster.start()
        elif action == "stop":
            cluster.stop()
        else:
            print(cluster.status())
    except ClusterError as error:
        say(f"error: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Run the real Pulumi program in-process with Pulumi's mocks, and record what it registers.

This is how the platform is proven without the Pulumi CLI or a cluster: the render
(``tools/render.py``), the validation tools and the tests all call :func:`run_stack`,
which executes ``__main__.py`` exactly as ``pulumi up`` would, with the stack file's
config, and returns every resource with its inputs, parent and options.
"""

from __future__ import annotations

import gc
import hashlib
import json
import runpy
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from settings.loader import PROJECT, StackPlan, load_settings
from settings.pulumi_config import project_values

ROOT = Path(__file__).resolve().parent.parent
REDACTED = "<redacted>"
ROOT_STACK_TYPE = "pulumi:pulumi:Stack"


@dataclass
class Registered:
    """One resource as the engine would have seen it."""

    urn: str
    type: str
    name: str
    custom: bool
    parent: str
    inputs: dict[str, Any]
    protect: bool = False
    retain_on_delete: bool = False
    delete_before_replace: bool = False
    ignore_changes: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)
    depends_on: list[str] = field(default_factory=list)
    #: ``customTimeouts`` as the engine gets them (``create``/``update``/``delete``), set ones only.
    custom_timeouts: dict[str, str] = field(default_factory=dict)

    @property
    def is_kubernetes(self) -> bool:
        return self.custom and self.type.startswith("kubernetes:")

    def manifest(self, redact: bool = True) -> dict[str, Any]:
        """The Kubernetes object, with secret values redacted and numbers as the API has them."""
        manifest: dict[str, Any] = _plain(self.inputs, redact)
        return manifest


@dataclass
class StackRun:
    stack: str
    resources: list[Registered]
    outputs: dict[str, Any]
    _manifests: dict[bool, list[dict[str, Any]]] = field(default_factory=dict, repr=False)
    _index: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict, repr=False)

    def kubernetes_objects(self, redact: bool = True) -> list[dict[str, Any]]:
        """Every Kubernetes object, in registration order (computed once; treat as read-only)."""
        if redact not in self._manifests:
            self._manifests[redact] = [r.manifest(redact) for r in self.resources if r.is_kubernetes]
        return self._manifests[redact]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [obj for obj in self.kubernetes_objects() if obj.get("kind") == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        if not self._index:
            for obj in self.kubernetes_objects():
                self._index.setdefault((obj["kind"], obj["metadata"]["name"]), []).append(obj)
        matches = self._index.get((kind, name), [])
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} {kind} objects named {name!r}")
        return matches[0]

    def resource(self, kind: str, name: str) -> Registered:
        for r in self.resources:
            if r.is_kubernetes and r.inputs.get("kind") == kind and r.inputs.get("metadata", {}).get("name") == name:
                return r
        raise KeyError(f"no {kind} {name!r}")


class _Mocks(pulumi.runtime.Mocks):
    """Providers' answers: a resource's outputs are its inputs, plus what a provider computes."""

    def __init__(self) -> None:
        # The runtime registers resources from several threads; the monitor's RegisterResource
        # and the new_resource call it makes run on the same one.
        self.current = threading.local()

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.current.inputs = args.inputs  # already deserialised by the monitor: reused, not redone
        # The program reads back only object metadata (names) and generated values; echoing
        # every input would double the serialisation work of a run for nothing.
        outputs = {key: args.inputs[key] for key in ("metadata", "apiVersion", "kind") if key in args.inputs}
        if args.typ == "random:index/randomPassword:RandomPassword":
            # Deterministic, so renders are reproducible; the real provider draws a random value.
            digest = hashlib.sha256(args.name.encode()).hexdigest()
            outputs["result"] = digest[: int(args.inputs.get("length", 32))]
        return f"{args.name}-id", outputs

    def call(self, _args: pulumi.runtime.MockCallArgs) -> tuple[dict[Any, Any], list[tuple[str, str]] | None]:
        return {}, None  # the program invokes no provider functions


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    """The stock mock monitor, also keeping the options a real engine would act on."""

    def __init__(self, mocks: _Mocks) -> None:
        super().__init__(mocks)
        self.recorder = mocks
        self.registered: list[Registered] = []

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        """The URN the engine gives: the parent's whole qualified type chain, without the root stack.

        The stock mock keeps only the parent's own type, so moving a component under another
        grandparent, which renames (and replaces) everything below it, would go unseen.
        """
        if parent:
            qualified_type = parent.split("::")[2]
            if qualified_type != ROOT_STACK_TYPE:
                type_ = f"{qualified_type}${type_}"
        return f"urn:pulumi:{pulumi.get_stack()}::{pulumi.get_project()}::{type_}::{name}"

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != ROOT_STACK_TYPE:
            self.registered.append(
                Registered(
                    urn=response.urn,
                    type=request.type,
                    name=request.name,
                    custom=bool(request.custom),
                    parent=request.parent,
                    inputs=self.recorder.current.inputs,
                    protect=bool(request.protect),
                    retain_on_delete=bool(request.retainOnDelete),
                    delete_before_replace=bool(request.deleteBeforeReplace),
                    ignore_changes=list(request.ignoreChanges),
                    aliases=[alias.urn or alias.spec.name for alias in request.aliases],
                    depends_on=list(request.dependencies),
                    custom_timeouts=_timeouts(request),
                )
            )
        return response


def _timeouts(request: Any) -> dict[str, str]:
    if not request.HasField("customTimeouts"):
        return {}
    timeouts = request.customTimeouts
    return {key: getattr(timeouts, key) for key in ("create", "update", "delete") if getattr(timeouts, key)}


def discover_stacks(root: Path = ROOT) -> list[str]:
    """Every stack with a stack file in the repository, in name order."""
    return sorted(path.name[len("Pulumi.") : -len(".yaml")] for path in root.glob("Pulumi.*.yaml"))


def stack_config(stack: str, root: Path = ROOT) -> tuple[dict[str, str], list[str]]:
    """A stack file's config as the engine hands it to the program: strings, objects as JSON.

    Encrypted values (``secure:``) cannot be decrypted offline; they are handed over as a
    placeholder and marked secret, as the engine would mark them.
    """
    document = yaml.safe_load((root / f"Pulumi.{stack}.yaml").read_text()) or {}
    config: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, value in (document.get("config") or {}).items():
        full_key = key if ":" in key else f"{PROJECT}:{key}"
        if isinstance(value, dict) and set(value) == {"secure"}:
            config[full_key] = REDACTED
            secret_keys.append(full_key)
        else:
            config[full_key] = value if isinstance(value, str) else json.dumps(value)
    return config, secret_keys


def stack_values(stack: str, root: Path = ROOT) -> dict[str, Any]:
    """A stack file's ``codai-platform:*`` config as plain data (what load_settings takes)."""
    return project_values(stack_config(stack, root)[0])


def stack_plan(stack: str, root: Path = ROOT) -> StackPlan:
    """A stack file's plan (its validated settings), without running the program."""
    return load_settings(stack, stack_values(stack, root))


def run_stack(
    stack: str,
    config: Mapping[str, str] | None = None,
    secret_keys: list[str] | None = None,
    program: Path | Callable[[], None] = ROOT / "__main__.py",
) -> StackRun:
    """Run ``program`` for ``stack`` under mocks; ``config`` defaults to the stack file's.

    ``program`` is the project's ``__main__.py`` by default, or a function that builds resources
    in-process (a component on its own, a platform over another catalog), as Pulumi's unit tests do.
    """
    if config is None:
        config, secret_keys = stack_config(stack)
    pulumi.runtime.settings.ROOT.set(None)
    pulumi.runtime.set_all_config(dict(config), secret_keys or [])
    monitor = _RecordingMonitor(_Mocks())
    pulumi.runtime.set_mocks(monitor.mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
    exports: dict[str, Any] = {}

    def main() -> None:
        if callable(program):
            program()
        else:
            runpy.run_path(str(program), run_name="__main__")
        root_stack = pulumi.runtime.settings.get_root_resource()
        outputs = getattr(root_stack, "outputs", {})
        pulumi.Output.from_input(outputs).apply(exports.update)

    with _cyclic_collection_paused():
        _sync_await(run_pulumi_func(main))
    return StackRun(stack=stack, resources=monitor.registered, outputs=exports)


@contextmanager
def _cyclic_collection_paused() -> Iterator[None]:
    """Python's cycle collector off while a program runs, back on (and catching up) afterwards.

    A run allocates hundreds of thousands of small objects that live until it ends (every
    resource's inputs, outputs and futures); the collector re-traversed them over and over and
    took half of a render's time, growing faster than the number of resources. Reference
    counting still frees what is not in a cycle; cycles wait for the collector after the run.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _plain(value: Any, redact: bool, secret: bool = False) -> Any:
    """Inputs as plain YAML-able data: floats that are whole become ints, secrets unwrap or redact."""
    if isinstance(value, dict):
        if rpc.is_rpc_secret(value):
            return _plain(rpc.unwrap_rpc_secret(value), redact, secret=True)
        return {key: _plain(item, redact, secret) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item, redact, secret) for item in value]
    if secret and redact:
        return REDACTED
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value

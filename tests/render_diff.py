"""Two renders compared: which objects and fields differ, as short ``Kind:path`` lines.

List items are matched by their name (a container, an alert, a rule group, a port) where they have
one, so a difference reads ``PrometheusRule:spec.groups[codai.core].rules[CpuSaturation/warning].expr``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from settings.loader import PROJECT
from tools.offline import run_stack


def config_of(values: dict[str, Any]) -> dict[str, str]:
    return {f"{PROJECT}:{key}": json.dumps(value) for key, value in values.items()}


#: Item fields that name a list item (a container, an alert, a rule group, a port).
ITEM_KEYS = ("name", "alert", "record", "port")
#: Above this many paths, a summary collapses to shorter ones (see :func:`summary`).
MAX_PATHS = 8
_MISSING = object()


def render(stack: str, values: dict[str, Any]) -> dict[str, Any]:
    """What a render of ``stack`` with these settings amounts to: every object with its resource options,
    and the stack outputs."""
    run = run_stack(stack, config=config_of(values), secret_keys=[])
    objects: dict[str, Any] = {}
    for resource in run.resources:
        if resource.is_kubernetes:
            manifest = resource.manifest(redact=False)  # mock passwords are deterministic
            meta = manifest.get("metadata", {})
            objects[f"{manifest['kind']}/{meta.get('namespace', '')}/{meta.get('name')}"] = {
                "kind": manifest["kind"], "manifest": manifest,
                "options": {"protect": resource.protect, "retainOnDelete": resource.retain_on_delete,
                            "customTimeouts": resource.custom_timeouts}}
    return {"objects": objects, "outputs": json.loads(json.dumps(run.outputs, default=str))}


def diff_renders(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    found: set[str] = set()
    old, new = before["objects"], after["objects"]
    for key in old.keys() | new.keys():
        kind = (old.get(key) or new.get(key))["kind"]
        if key not in new or key not in old:
            found.add(f"{kind}:{'-' if key not in new else '+'}")
            continue
        for name, value in old[key]["options"].items():
            if value != new[key]["options"][name]:
                found.add(f"{kind}:@{name}")
        found.update(f"{kind}:{_dotted(path)}" for path in diff_values(old[key]["manifest"], new[key]["manifest"]))
    found.update(f"outputs:{_dotted(path)}" for path in diff_values(before["outputs"], after["outputs"]))
    return sorted(found)


def _dotted(path: tuple[str, ...]) -> str:
    return ".".join(path)


def _item_key(item: Any) -> str | None:
    if not isinstance(item, dict):
        return None
    return next((str(item[key]) for key in ITEM_KEYS if key in item and not isinstance(item[key], (dict, list))), None)


def _keyed(items: list[Any]) -> dict[str, Any] | None:
    """Items by name; a name given twice (an alert in two severities) gets its severity: ``CpuSaturation/warning``."""
    keys = [_item_key(item) for item in items]
    if any(key is None for key in keys):
        return None
    if len(set(keys)) != len(keys):
        keys = [f"{key}/{item.get('labels', {}).get('severity', '')}" for key, item in zip(keys, items, strict=True)]
    if len(set(keys)) != len(keys):
        return None
    return {str(key): item for key, item in zip(keys, items, strict=True)}


def diff_values(old: Any, new: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Paths of the leaves that differ; list items by their name (``[CodaiCpuHighWarning]``) or ``[]``."""
    if old == new:
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(old.keys() | new.keys(), key=str):
            yield from diff_values(old.get(key, _MISSING), new.get(key, _MISSING), (*path, str(key)))
    elif isinstance(old, list) and isinstance(new, list) and path and any(isinstance(i, dict) for i in old + new):
        for label, before, after in _pairs(old, new):
            yield from diff_values(before, after, (*path[:-1], f"{path[-1]}[{label}]"))
    else:
        yield path


def _pairs(old: list[Any], new: list[Any]) -> list[tuple[str, Any, Any]]:
    """Items matched by name when every item has one, else by position (shown as ``[]``)."""
    keyed_old, keyed_new = _keyed(old), _keyed(new)
    if keyed_old is not None and keyed_new is not None:
        names = sorted(keyed_old.keys() | keyed_new.keys())
        return [(name, keyed_old.get(name, _MISSING), keyed_new.get(name, _MISSING)) for name in names]
    padded = max(len(old), len(new))
    old, new = old + [_MISSING] * (padded - len(old)), new + [_MISSING] * (padded - len(new))
    return [("", before, after) for before, after in zip(old, new, strict=True)]


def summary(found: list[str]) -> list[str]:
    """``found`` made readable and deterministic: paths that differ only in one list key merge into
    ``[*]`` (the same alert in every tier's group); when more than MAX_PATHS remain, paths are cut to
    their first segments (``.*`` marks the cut) until few enough, down to the kinds alone."""
    merged = _merge_keys(set(found))
    if len(merged) <= MAX_PATHS:
        return merged
    for depth in (3, 2, 1):
        short = sorted({_cut(entry, depth) for entry in merged})
        if len(short) <= MAX_PATHS:
            return short
    return sorted({entry.split(":", 1)[0] for entry in merged})


def _merge_keys(entries: set[str]) -> list[str]:
    while True:
        for entry in sorted(entries):
            siblings = next((group for group in _sibling_groups(entry, entries) if len(group[1]) > 1), None)
            if siblings:
                entries = (entries - siblings[1]) | {siblings[0]}
                break
        else:
            return sorted(entries)


def _sibling_groups(entry: str, entries: set[str]) -> Iterator[tuple[str, set[str]]]:
    """For each list key of ``entry``: the entry with ``[*]`` there, and the entries that match it."""
    for match in re.finditer(r"\[([^\]]*)\]", entry):
        if match.group(1) in ("", "*"):
            continue
        head, tail = entry[: match.start()], entry[match.end():]
        same = {other for other in entries if other.startswith(f"{head}[") and other.endswith(f"]{tail}")
                and "]" not in other[len(head) + 1: len(other) - len(tail) - 1]}
        yield f"{head}[*]{tail}", same


def _cut(entry: str, depth: int) -> str:
    kind, path = entry.split(":", 1)
    parts = [re.sub(r"\[[^\]]*\]", "[]", part) for part in path.split(".")]
    return f"{kind}:{'.'.join(parts[:depth])}{'.*' if len(parts) > depth else ''}"

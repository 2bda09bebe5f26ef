"""Schema validation of rendered objects, as a strict API server would do it.

- Built-in kinds: ``kubernetes-validate`` with its strict schemas (unknown fields are errors),
  once per Kubernetes version asked for.
- Custom resources: the ``openAPIV3Schema`` of the served version in the upstream CRD
  manifests vendored under ``vendor/crds/`` (tools/cluster/vendor-crds.sh), closed with
  :func:`close_schema` so that an unknown field is an error there too (a CRD schema allows
  unknown fields; strict field validation does not).

Only the tests and ``tools/validate.py`` read the CRD folder; the program never does.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import kubernetes_validate.utils
import yaml

from tools.offline import ROOT

DEFAULT_CRDS = ROOT / "vendor" / "crds"

Object = dict[str, Any]
#: ``(apiVersion, kind)`` -> the closed JSON schema of that served CRD version.
CrdSchemas = dict[tuple[str, str], dict[str, Any]]

# kubernetes-validate re-reads and re-parses its schema files (the 2 MB ``_definitions.json``
# among them) on every call: ~35 ms an object. The files never change, so memoising the reader
# makes a whole stack take a fraction of a second; validation itself is untouched.
kubernetes_validate.utils.schema_contents = functools.lru_cache(maxsize=None)(
    kubernetes_validate.utils.schema_contents
)


class CrdFolderMissingError(FileNotFoundError):
    """The upstream CRD manifests are not where the validation expects them."""


class _CrdLoader(yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader):  # type: ignore[misc]
    """A safe loader (libyaml when present: the CRDs are 1.7 MB) that reads a bare ``=`` as a string.

    The AlertmanagerConfig CRD has ``=`` as an enum value; YAML resolves it to the ``value``
    tag, which ``safe_load`` cannot construct.
    """


def _plain_scalar(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    if not isinstance(node, yaml.ScalarNode):
        raise yaml.constructor.ConstructorError(None, None, "expected a scalar", node.start_mark)
    return str(loader.construct_scalar(node))


_CrdLoader.add_constructor("tag:yaml.org,2002:value", _plain_scalar)


def load_crd_schemas(folder: Path = DEFAULT_CRDS) -> CrdSchemas:
    """Closed schemas of every served version of every CRD in ``folder`` (read once per process; read-only)."""
    return _load_crd_schemas(folder.resolve())


@functools.cache
def _load_crd_schemas(folder: Path) -> CrdSchemas:
    if not folder.is_dir():
        raise CrdFolderMissingError(
            f"CRD folder {folder} not found: the upstream CustomResourceDefinitions are vendored in "
            "vendor/crds (tools/cluster/vendor-crds.sh), or pass --crds DIR"
        )
    schemas: CrdSchemas = {}
    for path in sorted(folder.rglob("*.yaml")):
        for crd in yaml.load_all(path.read_text(), Loader=_CrdLoader):
            if not isinstance(crd, dict) or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if version.get("served"):
                    schema = close_schema(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
                    schemas[(f"{group}/{version['name']}", kind)] = schema
    if not schemas:
        raise CrdFolderMissingError(f"no CustomResourceDefinition in {folder}")
    return schemas


def close_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Forbid fields that an object schema does not list, in place, as strict field validation does.

    An object schema is closed when it lists ``properties`` and says nothing of
    ``additionalProperties`` or ``x-kubernetes-preserve-unknown-fields`` (those keep their
    meaning: a map, or free-form data).
    """
    _close(schema)
    # The API server checks ``metadata`` with its own ObjectMeta schema, whatever the CRD says.
    schema.setdefault("properties", {}).setdefault("metadata", {"type": "object"})
    return schema


def _close(schema: Any) -> None:
    if isinstance(schema, list):
        for item in schema:
            _close(item)
        return
    if not isinstance(schema, dict):
        return
    if (
        "properties" in schema
        and schema.get("type", "object") == "object"
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        schema["additionalProperties"] = False
    for key, value in schema.items():
        # ``properties`` maps field names to schemas: a field may be called ``type`` or ``items``.
        if key == "properties" and isinstance(value, dict):
            for sub in value.values():
                _close(sub)
        else:
            _close(value)


@dataclass
class SchemaReport:
    """What the schema validation of one set of objects found."""

    errors: list[str] = field(default_factory=list)
    #: Built-in objects validated (each once per Kubernetes version).
    builtin: int = 0
    #: Custom resources validated against a CRD schema.
    custom: int = 0


def _where(obj: Object) -> str:
    return f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"


def _path(parts: Iterable[Any]) -> str:
    return ".".join(map(str, parts)) or "(top level)"


def validate_objects(objects: Iterable[Object], versions: Sequence[str], crds: CrdSchemas) -> SchemaReport:
    """Validate every object: custom resources by their CRD, everything else by Kubernetes ``versions``."""
    _check_versions(versions)
    report = SchemaReport()
    for obj in objects:
        key = (str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
        if key in crds:
            report.custom += 1
            validator = jsonschema.Draft7Validator(crds[key])
            report.errors += [f"{_where(obj)}: {_path(e.absolute_path)}: {e.message}"
                              for e in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.path)))]
            continue
        report.builtin += 1
        for version in versions:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                report.errors.append(f"{_where(obj)}: no schema for {key[0]} {key[1]} in Kubernetes {version} "
                                     "nor among the CRDs (a CRD missing from vendor/crds, or a wrong apiVersion)")
            except kubernetes_validate.ValidationError as error:
                report.errors.append(f"{_where(obj)} (Kubernetes {version}): {_path(error.path)}: {error.message}")
    return report


def _minor(version: str) -> tuple[int, int]:
    major, minor = version.removeprefix("v").split(".")[:2]
    return int(major), int(minor)


def _check_versions(versions: Sequence[str]) -> None:
    """Refuse versions the installed kubernetes-validate has no schemas for (it would pick others)."""
    shipped = sorted(map(_minor, kubernetes_validate.utils.all_versions()))
    for version in versions:
        if not shipped[0] <= _minor(version) <= shipped[-1]:
            raise ValueError(f"kubernetes-validate {kubernetes_validate.__version__} ships schemas for Kubernetes "
                             f"{shipped[0][0]}.{shipped[0][1]} to {shipped[-1][0]}.{shipped[-1][1]}, not {version}")


def schema_errors(objects: Iterable[Object], versions: Sequence[str], crds: CrdSchemas) -> tuple[list[str], int, int]:
    """:func:`validate_objects` as ``(errors, built-in objects, custom resources)``."""
    report = validate_objects(objects, versions, crds)
    return report.errors, report.builtin, report.custom

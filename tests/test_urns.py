"""URNs are a contract: a changed URN replaces the resource on the next `pulumi up`."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tools.offline import StackRun, run_stack
from tools.urns import difference, urns

_PROGRAM = """\
import pulumi
from components.platform import CodaiPlatform, PlatformArgs
from services.catalog import SERVICES, Catalog
from services.model import ServiceSpec
from services.tiers import Tier
from settings.loader import load_settings
from settings.pulumi_config import read_project_config

catalog = Catalog({services})
settings = load_settings(pulumi.get_stack(), read_project_config(), catalog)
CodaiPlatform("codai", PlatformArgs(platform=settings, catalog=catalog))
"""


def run_with_catalog(stack: str, services: str) -> StackRun:
    """The program with another catalog (a Python expression over SERVICES)."""
    with tempfile.TemporaryDirectory() as folder:
        program = Path(folder) / "__main__.py"
        program.write_text(_PROGRAM.format(services=services))
        return run_stack(stack, program=program)


def test_urns_match_the_committed_snapshot(any_stack):
    added, removed = difference(any_stack.stack, urns(any_stack))
    assert (added, removed) == ([], []), (
        "resource URNs changed: a real `pulumi up` would delete and recreate these.\n"
        f"added: {added}\nremoved: {removed}\n"
        "If the rename is deliberate, add an `aliases=` option for the old name, then run "
        "`.venv/bin/python -m tools.urns --update` and commit tests/snapshots/."
    )


def test_every_urn_is_unique_and_every_object_named(any_stack):
    all_urns = [r.urn for r in any_stack.resources]
    assert len(all_urns) == len(set(all_urns))
    for obj in any_stack.kubernetes_objects():
        assert obj["metadata"]["name"]


def test_reordering_the_catalog_changes_no_urn(staging):
    reordered = run_with_catalog("staging", "reversed(SERVICES)")
    assert urns(reordered) == urns(staging)


def test_adding_a_service_changes_no_existing_urn(staging):
    extra = ('[*SERVICES, ServiceSpec(name="newai", tier=Tier.SUPPORT, description="A new service", '
             'callers=("hub",))]')
    grown = run_with_catalog("staging", extra)
    before, after = set(urns(staging)), set(urns(grown))
    assert before <= after
    assert all("newai" in urn for urn in after - before) and len(after - before) >= 9


def test_the_namespace_is_protected_in_production_and_retained_everywhere(production, staging):
    for run in (production, staging):
        namespace = run.resource("Namespace", run.outputs["namespace"])
        assert namespace.retain_on_delete
        assert namespace.protect == (run is production)

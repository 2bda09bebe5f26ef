"""Every alert has a runbook, every runbook an alert, and each one says what, how to confirm and what to do."""

from __future__ import annotations

import re
from pathlib import Path

from components.monitoring.rules import AlertName, rule_groups
from components.platform import observability_args
from tests.conftest import ROOT, STACKS
from tools.offline import stack_plan

RUNBOOKS = ROOT / "docs" / "runbooks"
INDEX = RUNBOOKS / "README.md"


def runbooks() -> dict[str, Path]:
    return {path.stem: path for path in RUNBOOKS.glob("*.md") if path != INDEX}


def test_every_alert_has_a_runbook_and_every_runbook_an_alert():
    assert sorted(runbooks()) == sorted(AlertName)


def test_every_rendered_rule_links_to_its_runbook():
    for stack in STACKS:
        plan = stack_plan(stack)
        base = str(plan.settings.monitoring.runbook_base_url).rstrip("/")
        for group in rule_groups(observability_args(plan)).values():
            for rule in (r for r in group["rules"] if "alert" in r):
                url = rule["annotations"]["runbook_url"]
                assert url == f"{base}/{rule['alert']}.md"
                assert url.split("/")[-1] in {path.name for path in runbooks().values()}


def test_runbooks_say_what_how_to_confirm_and_what_to_do():
    for name, path in runbooks().items():
        text = path.read_text()
        assert text.startswith(f"# {name}\n"), name
        assert re.findall(r"^## (.+)$", text, re.MULTILINE) == ["Meaning", "Confirm", "Act"], name


def test_links_between_runbooks_resolve_and_the_index_lists_them_all():
    for path in [*runbooks().values(), INDEX]:
        for target in re.findall(r"\]\(([^)#]+\.md)\)", path.read_text()):
            assert (path.parent / target).resolve().exists(), f"{path.name} links to missing {target}"
    listed = set(re.findall(r"\]\((\w+)\.md\)", INDEX.read_text()))
    assert listed == set(runbooks())

"""The policy pack's copy of ``selector_matches`` answers as the tools' own, and both as Kubernetes does.

The pack runs in its own venv without the repository, so it keeps a copy of the label selector
(policy/codai_policies.py) instead of importing tools/rendered.py. Both are asked the same
questions here: every operator, matchLabels and matchExpressions alone and together, several
expressions, ``{}`` and ``None``, against labels present, absent or with another value. The
pack's copy is asked twice, once with plain dicts and once with the read-only proxies the engine
hands it. A third answer comes from the Kubernetes rules themselves (:func:`kubernetes_answer`),
so a change made to both copies alike fails too.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from pulumi_policy.proxy import unknown_checking_proxy

from policy.codai_policies import selector_matches as pack_selector_matches
from tools.rendered import selector_matches as tools_selector_matches

Selector = dict[str, Any] | None
Labels = dict[str, str]

OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")

LABELS: list[Labels] = [
    {},
    {"app": "api"},
    {"app": "web"},
    {"app": ""},
    {"tier": "backend"},
    {"app": "api", "tier": "backend"},
    {"app": "api", "tier": "frontend"},
    {"app": "worker", "tier": "backend", "track": "canary"},
]

MATCH_LABELS: list[dict[str, str]] = [
    {"app": "api"},
    {"app": ""},
    {"app": "api", "tier": "backend"},
    {"tier": "frontend"},
]


def _expressions() -> list[dict[str, Any]]:
    """One requirement per key, operator and (for In and NotIn) value list."""
    expressions: list[dict[str, Any]] = []
    for key, operator in itertools.product(("app", "tier"), OPERATORS):
        if operator in ("Exists", "DoesNotExist"):
            expressions.append({"key": key, "operator": operator})
            continue
        for values in (["api"], ["api", "web"], ["backend"], []):
            expressions.append({"key": key, "operator": operator, "values": values})
    return expressions


EXPRESSIONS = _expressions()


def _selectors() -> list[tuple[str, Selector]]:
    """(kind, selector): the shapes a selector comes in, each with the parts above."""
    selectors: list[tuple[str, Selector]] = [
        ("None", None),
        ("empty", {}),
        ("empty", {"matchLabels": {}}),
        ("empty", {"matchExpressions": []}),
        ("empty", {"matchLabels": {}, "matchExpressions": []}),
    ]
    selectors += [("matchLabels", {"matchLabels": labels}) for labels in MATCH_LABELS]
    selectors += [("expression", {"matchExpressions": [e]}) for e in EXPRESSIONS]
    selectors += [("expressions", {"matchExpressions": [a, b]}) for a, b in itertools.combinations(EXPRESSIONS, 2)]
    selectors += [("both", {"matchLabels": labels, "matchExpressions": [e]})
                  for labels, e in itertools.product(MATCH_LABELS, EXPRESSIONS)]
    return selectors


SELECTORS = _selectors()
CASES = [(kind, selector, labels) for (kind, selector), labels in itertools.product(SELECTORS, LABELS)]


def kubernetes_answer(selector: Selector, labels: Mapping[str, str]) -> bool:
    """The selector as the Kubernetes API documents it: every requirement must hold, and each
    ``matchLabels`` entry is the requirement ``key In [value]``. ``None`` selects nothing (the
    project's reading of a missing selector); ``{}`` has no requirement, so it selects everything."""
    if selector is None:
        return False
    requirements = [(key, "In", {value}) for key, value in (selector.get("matchLabels") or {}).items()]
    requirements += [(e["key"], e["operator"], set(e.get("values") or ()))
                     for e in selector.get("matchExpressions") or ()]
    for key, operator, values in requirements:
        match operator:
            case "Exists":
                satisfied = key in labels
            case "DoesNotExist":
                satisfied = key not in labels
            case "In":
                satisfied = key in labels and labels[key] in values
            case "NotIn":
                satisfied = key not in labels or labels[key] not in values
            case _:
                raise KeyError(operator)
        if not satisfied:
            return False
    return True


def _answers(selector: Selector, labels: Labels) -> dict[str, bool]:
    proxied = None if selector is None else unknown_checking_proxy(selector)
    return {
        "tools": tools_selector_matches(selector, labels),
        "pack": pack_selector_matches(selector, labels),
        "pack (engine proxies)": pack_selector_matches(proxied, unknown_checking_proxy(labels)),
        "kubernetes": kubernetes_answer(selector, labels),
    }


def test_the_pack_and_the_tools_select_the_same_pods() -> None:
    disagreements = []
    for kind, selector, labels in CASES:
        answers = _answers(selector, labels)
        if len(set(answers.values())) != 1:
            disagreements.append(f"{kind}: {selector} on {labels}: {answers}")
    assert not disagreements, f"{len(disagreements)} of {len(CASES)} cases disagree:\n" + "\n".join(disagreements[:20])


def test_the_table_asks_every_question_both_ways() -> None:
    """Each kind of selector, and each operator alone, both selects and refuses some labels."""
    outcomes: dict[str, set[bool]] = {}
    for kind, selector, labels in CASES:
        outcomes.setdefault(kind, set()).add(kubernetes_answer(selector, labels))
        if kind == "expression" and selector is not None:
            outcomes.setdefault(selector["matchExpressions"][0]["operator"], set()).add(
                kubernetes_answer(selector, labels))
    assert outcomes.pop("None") == {False} and outcomes.pop("empty") == {True}
    assert set(outcomes) == {"matchLabels", "expression", "expressions", "both", *OPERATORS}
    assert all(answers == {True, False} for answers in outcomes.values()), outcomes
    assert len(CASES) == len(SELECTORS) * len(LABELS) > 2000

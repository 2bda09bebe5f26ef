"""Serves the policy pack to the Pulumi engine. Never imported by tests: constructing the pack blocks."""

from codai_policies import POLICIES
from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack(name="codai-platform", enforcement_level=EnforcementLevel.MANDATORY, policies=POLICIES)

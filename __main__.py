"""codai-platform: the Codai ecosystem on Kubernetes. One stack per environment."""

import pulumi

from components.platform import CodaiPlatform, PlatformArgs
from services.catalog import CATALOG
from settings.pulumi_config import load_stack_plan

plan = load_stack_plan()  # validates everything before the first resource
platform = CodaiPlatform("codai", PlatformArgs(plan=plan, catalog=CATALOG))

pulumi.export("namespace", platform.foundation.namespace.metadata.name)
pulumi.export("urls", platform.urls)
pulumi.export("servicesByTier", {tier.value: len(plan.in_tier(tier)) for tier in platform.tiers})

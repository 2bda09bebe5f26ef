"""codai-platform: the Codai ecosystem on Kubernetes. One stack per environment."""

import pulumi

from components.platform import CodaiPlatform, PlatformArgs
from services.catalog import CATALOG
from settings.pulumi_config import load_stack_settings

settings = load_stack_settings()  # validates everything before the first resource
platform = CodaiPlatform("codai", PlatformArgs(platform=settings, catalog=CATALOG))

pulumi.export("namespace", platform.foundation.namespace.metadata.name)
pulumi.export("urls", platform.urls)
pulumi.export("servicesByTier", {tier.value: len(settings.in_tier(tier)) for tier in platform.tiers})

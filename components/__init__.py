"""Pulumi ComponentResources that build the platform from typed settings."""

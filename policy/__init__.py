"""The Codai policy pack (see codai_policies.py); __main__.py serves it to the Pulumi engine."""

"""The shared data services: PostgreSQL and Redis, in the cluster or managed elsewhere."""

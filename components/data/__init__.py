"""The shared data services: PostgreSQL and Redis, in the cluster or managed elsewhere.

``Postgres`` and ``Redis`` are :class:`components.contracts.DependencyProvider` components;
their settings are ``settings.data.PostgresSettings`` and ``RedisSettings``. See docs/data.md.
"""

from components.data.postgres import Postgres, PostgresArgs
from components.data.provider import DataArgs
from components.data.redis import Redis, RedisArgs

__all__ = ["DataArgs", "Postgres", "PostgresArgs", "Redis", "RedisArgs"]

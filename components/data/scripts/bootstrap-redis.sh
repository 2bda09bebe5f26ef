#!/bin/sh
# Applies the generated ACL SETUSER commands (components/data/acl.py) to an external Redis.
# Usage: bootstrap-redis.sh <commands file>; REDIS_HOST, REDIS_PORT, REDIS_USER (or REDIS_USER_FILE),
# REDIS_PASSWORD_FILE and REDIS_TLS (true/false) say where and as whom.
set -eu
commands="${1:?usage: bootstrap-redis.sh <commands file>}"
: "${REDIS_HOST:?}" "${REDIS_PORT:?}" "${REDIS_PASSWORD_FILE:?}"
[ -n "${REDIS_USER:-}" ] || REDIS_USER=$(cat "${REDIS_USER_FILE:?set REDIS_USER or REDIS_USER_FILE}")
REDISCLI_AUTH=$(cat "$REDIS_PASSWORD_FILE")
export REDISCLI_AUTH
set -- -h "$REDIS_HOST" -p "$REDIS_PORT" --user "$REDIS_USER" --no-auth-warning
# With TLS, the server certificate is checked against the system CAs (OpenSSL's default paths).
[ "${REDIS_TLS:-false}" = true ] && set -- "$@" --tls
tries=0
until [ "$(redis-cli "$@" ping 2>/dev/null)" = PONG ]; do
  tries=$((tries + 1))
  [ "$tries" -lt "${WAIT_TRIES:-60}" ] || { echo "error: $REDIS_HOST:$REDIS_PORT does not answer" >&2; exit 1; }
  sleep 2
done
# redis-cli runs one command per line and prints each reply; anything but OK is a failure.
replies=$(redis-cli "$@" < "$commands")
bad=$(printf '%s\n' "$replies" | grep -v '^OK$' || true)
[ -z "$bad" ] || { echo "error: ACL SETUSER refused: $bad" >&2; exit 1; }
echo "bootstrap: $(printf '%s\n' "$replies" | wc -l) Redis users are up to date" >&2

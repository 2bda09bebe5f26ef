#!/usr/bin/env bash
# Installs the Debian packages whose real binaries the tests run, when they are missing
# (openssl makes the local cluster's certificates), and what building psycopg2 from source
# needs (pg_config, a C compiler): barman-cloud, in requirements-dev.txt, depends on it.
# Prints nothing when everything is already there.
set -euo pipefail

declare -A wanted=(
  [promtool]=prometheus
  [amtool]=prometheus-alertmanager
  [redis-server]=redis-server
  [redis-sentinel]=redis-sentinel
  [pg_ctl]=postgresql
  [pgbouncer]=pgbouncer
  [openssl]=openssl
  [jq]=jq
  [pg_config]=libpq-dev
  [gcc]=gcc
)
missing=()
for tool in "${!wanted[@]}"; do
  # pgbouncer lives in /usr/sbin, off a normal user's PATH; PostgreSQL's tools in its versioned folder.
  if ! command -v "$tool" >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/"$tool" /usr/sbin/"$tool" >/dev/null 2>&1; then
    missing+=("${wanted[$tool]}")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "Installing Debian packages: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The packages start their own daemons; the tests start private servers instead.
for service in prometheus prometheus-alertmanager redis-server redis-sentinel postgresql pgbouncer; do
  $sudo service "$service" stop >/dev/null 2>&1 || true
done

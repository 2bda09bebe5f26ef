#!/bin/sh
# Restores every <database>.dump of one backup folder, after checking SHA256SUMS.
# Each database must exist (the bootstrap job creates it, with its role) and be empty:
# a restore never overwrites data. Usage: restore.sh <backup folder>.
set -eu
. "$(dirname "$0")/common.sh"
backup="${1:?usage: restore.sh <backup folder>}"
[ -f "$backup/SHA256SUMS" ] || fail "$backup has no SHA256SUMS: not a complete backup"
(cd "$backup" && sha256sum -c SHA256SUMS >/dev/null) || fail "$backup does not match its SHA256SUMS"
load_credentials
wait_for_server

user_relations="SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%'"
for dump in "$backup"/*.dump; do
  db=$(basename "$dump" .dump)
  count=$(psql -X -At -v ON_ERROR_STOP=1 -d "$db" -c "$user_relations") || fail "database $db is missing: run the bootstrap first"
  [ "$count" = 0 ] || fail "database $db is not empty ($count relations); restore only into empty databases"
done
for dump in "$backup"/*.dump; do
  db=$(basename "$dump" .dump)
  pg_restore --exit-on-error --single-transaction --no-password --dbname="$db" "$dump" || fail "restore of $db failed"
  log "restore: $db restored from $dump"
done

#!/bin/sh
# Dumps each database of $BACKUP_DATABASES (pg_dump, custom format, gzip level 6) into a new folder of
# $BACKUP_DIR named after the UTC time, writes SHA256SUMS, then keeps the newest $BACKUP_KEEP.
# A folder becomes a backup only once complete: until then it is <time>.partial.
# Connection from the libpq environment (PGHOST, PGPORT, PGUSER or PGUSER_FILE,
# PGPASSWORD_FILE, PGSSLMODE).
set -eu
. "$(dirname "$0")/common.sh"
: "${BACKUP_DIR:?set BACKUP_DIR}" "${BACKUP_KEEP:?set BACKUP_KEEP}" "${BACKUP_DATABASES:?set BACKUP_DATABASES}"
load_credentials
wait_for_server

stamp=$(date -u +%Y%m%dT%H%M%SZ)
while [ -e "$BACKUP_DIR/$stamp" ]; do sleep 1; stamp=$(date -u +%Y%m%dT%H%M%SZ); done
work="$BACKUP_DIR/$stamp.partial"
# Left-overs of a run that failed or was killed are not backups.
rm -rf "$BACKUP_DIR"/*.partial
mkdir -p "$work"
for db in $BACKUP_DATABASES; do
  pg_dump --format=custom --compress=6 --no-password --dbname="$db" --file="$work/$db.dump" || fail "pg_dump of $db failed"
  log "backup: $db dumped ($(wc -c < "$work/$db.dump") bytes)"
done
(cd "$work" && sha256sum -- *.dump > SHA256SUMS)
mv "$work" "$BACKUP_DIR/$stamp"
log "backup: $BACKUP_DIR/$stamp is complete"

# Retention by count, only after a successful backup: a failing job never deletes the last good one.
ls -1 "$BACKUP_DIR" | expired "$BACKUP_KEEP" | while read -r old; do
  rm -rf "${BACKUP_DIR:?}/$old"
  log "backup: removed $old (keeping the newest $BACKUP_KEEP)"
done

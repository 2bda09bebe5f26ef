# Sourced by the data tier's scripts (POSIX sh: they run in the postgres and rclone images).

# Backup folders are named after the UTC time they were taken, so sorting names sorts by age.
STAMP_PATTERN='^[0-9]{8}T[0-9]{6}Z$'

log() { echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) $*" >&2; }
fail() { log "error: $*"; exit 1; }

# Credentials come from mounted Secret files (PGUSER_FILE, PGPASSWORD_FILE), never from the pod spec.
load_credentials() {
  if [ -n "${PGUSER_FILE:-}" ]; then
    PGUSER=$(cat "$PGUSER_FILE") || fail "cannot read $PGUSER_FILE"
    export PGUSER
  fi
  if [ -n "${PGPASSWORD_FILE:-}" ]; then
    PGPASSWORD=$(cat "$PGPASSWORD_FILE") || fail "cannot read $PGPASSWORD_FILE"
    export PGPASSWORD
  fi
}

# A server that is starting (or failing over) refuses connections for a while: wait, within limits.
wait_for_server() {
  tries=0
  until pg_isready -q -d "${PGDATABASE:-postgres}"; do
    tries=$((tries + 1))
    [ "$tries" -lt "${WAIT_TRIES:-60}" ] || fail "the server at ${PGHOST:-local socket} does not accept connections"
    sleep 2
  done
}

# Reads backup names on stdin; prints those beyond the newest $1.
expired() { grep -E "$STAMP_PATTERN" | sort -r | tail -n "+$(($1 + 1))"; }

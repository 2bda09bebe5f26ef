#!/bin/sh
# Runs the generated bootstrap (roles and databases, see components/data/sql.py) as the administrator.
# Usage: bootstrap-postgres.sh <bootstrap.sql>; connection from the libpq environment.
set -eu
. "$(dirname "$0")/common.sh"
script="${1:?usage: bootstrap-postgres.sh <bootstrap.sql>}"
load_credentials
wait_for_server
psql -X -q -v ON_ERROR_STOP=1 -d "${PGDATABASE:-postgres}" -f "$script"
log "bootstrap: roles and databases are up to date"

#!/bin/sh
# Copies the newest complete backup of $BACKUP_DIR to $BACKUP_REMOTE with rclone, then keeps the
# newest $BACKUP_KEEP there. SHA256SUMS goes last: a remote folder without it is an interrupted
# upload, which restore.sh refuses.
set -eu
. "$(dirname "$0")/common.sh"
: "${BACKUP_DIR:?set BACKUP_DIR}" "${BACKUP_REMOTE:?set BACKUP_REMOTE}" "${BACKUP_KEEP:?set BACKUP_KEEP}"

latest=$(ls -1 "$BACKUP_DIR" | grep -E "$STAMP_PATTERN" | sort | tail -n 1)
[ -n "$latest" ] || fail "no complete backup in $BACKUP_DIR"
rclone copy --exclude SHA256SUMS "$BACKUP_DIR/$latest" "$BACKUP_REMOTE/$latest"
rclone copyto "$BACKUP_DIR/$latest/SHA256SUMS" "$BACKUP_REMOTE/$latest/SHA256SUMS"
log "upload: $latest copied to $BACKUP_REMOTE"

rclone lsf --dirs-only "$BACKUP_REMOTE" | sed 's:/$::' | expired "$BACKUP_KEEP" | while read -r old; do
  rclone purge "$BACKUP_REMOTE/$old"
  log "upload: removed $old (keeping the newest $BACKUP_KEEP)"
done

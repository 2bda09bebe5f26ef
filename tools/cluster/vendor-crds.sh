#!/usr/bin/env bash
# Vendor the CustomResourceDefinitions the stacks use into vendor/crds/, from the upstream
# modules on the Go module proxy, at the versions in versions.sh, with their licence.
# Run it after a version bump and commit the result; nothing reads the CRDs from elsewhere.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/versions.sh"
dest=$(cd "$here/../.." && pwd)/vendor/crds

module_dir() { go mod download -json "$1" | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])'; }

# vendor_from MODULE@VERSION FOLDER-IN-MODULE NAME FILE...
vendor_from() {
  local src name=$3 out=$dest/$3 spec=$1 folder=$2; shift 3
  src=$(module_dir "$spec")
  rm -rf "$out" && mkdir -p "$out"
  cp "$src/LICENSE" "$out/LICENSE"
  for f in "$@"; do cp "$src/$folder/$f" "$out/$f"; done
  chmod -R u+w,go-w "$out"
  printf '%s %s/\n' "$spec" "$folder" > "$out/SOURCE"
  echo "vendored $# CRDs from $spec into vendor/crds/$name"
}

vendor_from "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION" \
  example/prometheus-operator-crd prometheus-operator \
  monitoring.coreos.com_servicemonitors.yaml monitoring.coreos.com_podmonitors.yaml \
  monitoring.coreos.com_probes.yaml monitoring.coreos.com_prometheusrules.yaml \
  monitoring.coreos.com_alertmanagerconfigs.yaml
vendor_from "github.com/cert-manager/cert-manager@$CERT_MANAGER_VERSION" \
  deploy/crds cert-manager \
  cert-manager.io_certificates.yaml cert-manager.io_issuers.yaml cert-manager.io_clusterissuers.yaml
vendor_from "github.com/cloudnative-pg/cloudnative-pg@$CLOUDNATIVE_PG_VERSION" \
  config/crd/bases cloudnative-pg \
  postgresql.cnpg.io_clusters.yaml postgresql.cnpg.io_poolers.yaml \
  postgresql.cnpg.io_scheduledbackups.yaml postgresql.cnpg.io_backups.yaml \
  postgresql.cnpg.io_databases.yaml

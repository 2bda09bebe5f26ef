#!/usr/bin/env bash
# Build the local cluster's tools from the Go module proxy, each into its own folder of the tool
# cache, keyed by its version and the Go version: a tool already built is never built again.
#
#   tools/cluster/build.sh            build whatever is missing, with progress
#   tools/cluster/build.sh --probe    only ask the proxy for every module, change nothing
#
# The cache is $CODAI_TOOLS_HOME (default ~/.cache/codai-platform/tools), outside the repo; Go's
# own caches (GOMODCACHE, GOCACHE) keep the downloads and compiled packages between versions.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.sh
. "$here/versions.sh"
. "$here/lib.sh"

command -v go >/dev/null || { echo "[tools] Go is needed to build the local cluster's tools (1.26 or newer)" >&2; exit 1; }
export CGO_ENABLED=0 GOFLAGS=-mod=mod
modules="$here/modules"

say() { printf '%s [tools] %s\n' "$(date +%H:%M:%S)" "$*"; }

# go build -v names each package as it is compiled: print a count every 200 instead.
progress() {
  awk -v what="$1" '{ n++; if (n % 200 == 0) { printf "%s [tools]   %s: %d packages compiled\n", strftime("%H:%M:%S"), what, n; fflush() } }
                    END { printf "%s [tools]   %s: %d packages compiled\n", strftime("%H:%M:%S"), what, n }'
}

# build_in DIR WHAT OUT LDFLAGS PKG...: compile PKGs of the module in DIR into OUT.
build_in() {
  local dir=$1 what=$2 out=$3 ldflags=$4; shift 4
  local log="$work/build-${what// /-}.log"
  mkdir -p "$out"
  if ! (cd "$dir" && go build -v -trimpath -ldflags "-s -w $ldflags" -o "$out/" "$@" 2>&1) | tee "$log" | progress "$what"; then
    say "$what: the build failed; its last lines:"; tail -n 40 "$log" >&2
    return 1
  fi
}

# A wrapper module from modules/NAME, copied to a scratch folder (go.sum may gain lines there).
wrapper() {
  rm -rf "$work/$1" && cp -r "$modules/$1" "$work/$1" && echo "$work/$1"
}

probe() {
  local failed=0 m
  for m in "go.etcd.io/etcd/server/v3@$ETCD_VERSION" "k8s.io/kubernetes@$KUBERNETES_VERSION" \
           "k8s.io/api@v0.${KUBERNETES_VERSION#v1.}" "sigs.k8s.io/kwok@$KWOK_VERSION" \
           "github.com/pulumi/pulumi/pkg/v3@$PULUMI_VERSION" "github.com/pulumi/pulumi/sdk/v3@$PULUMI_VERSION" \
           "github.com/pulumi/pulumi-kubernetes/provider/v4@$KUBERNETES_PROVIDER_MODULE"; do
    if go list -m -json "$m" >/dev/null 2>"$work/probe.err"; then
      say "served:  $m"
    else
      say "REFUSED: $m: $(tail -n 1 "$work/probe.err")"; failed=1
    fi
  done
  return $failed
}

build_etcd() {
  local dir; dir=$(wrapper etcd)
  build_in "$dir" etcd "$1/bin" "" go.etcd.io/etcd/server/v3
  mv "$1/bin/server" "$1/bin/etcd"  # go names the binary after the package folder
}

build_kube() {
  local dir ldflags="" minor=${KUBERNETES_VERSION#v1.}; minor=${minor%%.*}
  dir=$(wrapper kube)
  # Without these, /version and `--version` report v0.0.0 and clients guess the wrong features.
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags="$ldflags -X $p.gitVersion=$KUBERNETES_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ldflags="$ldflags -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  build_in "$dir" kubernetes "$1/bin" "$ldflags" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl
}

build_kwok() {
  local dir src; dir=$(wrapper kwok)
  build_in "$dir" kwok "$1/bin" "" sigs.k8s.io/kwok/cmd/kwok
  # The default Stages kwokctl uses (nodes initialised and kept alive, pods Ready, Job pods
  # Succeeded, deleted pods gone) and the volume ones (claims provisioned and bound).
  src=$(go env GOMODCACHE)/sigs.k8s.io/kwok@$KWOK_VERSION/kustomize/stage
  mkdir -p "$1/stages"
  for f in node/fast/node-initialize node/heartbeat-with-lease/node-heartbeat-with-lease \
           pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete \
           volume/fast/pvc-provision volume/fast/pv-bind volume/fast/pv-delete volume/fast/pvc-delete; do
    cp "$src/$f.yaml" "$1/stages/$(basename "$f").yaml"
  done
  cp "$src/volume/fast/storage-class.yaml" "$1/storage-class.yaml"
}

build_pulumi() {
  local dir; dir=$(wrapper pulumi)
  build_in "$dir" pulumi "$1/bin" "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION" \
    github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
}

build_kubernetes_provider() {
  local src dir=$work/kubernetes-provider
  src=$(go mod download -json "github.com/pulumi/pulumi-kubernetes/provider/v4@$KUBERNETES_PROVIDER_MODULE" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
  # Built as the main module: its schema is embedded from files that `generate.go` writes into
  # the command's folder. Upstream points the SDK at ../sdk, which the provider's code does not use.
  cp -r "$src" "$dir" && chmod -R u+w "$dir"
  (cd "$dir" && go mod edit -dropreplace=github.com/pulumi/pulumi-kubernetes/sdk/v4)
  say "kubernetes provider: generating the embedded schema"
  (cd "$dir/cmd/pulumi-resource-kubernetes" && VERSION=$KUBERNETES_PROVIDER_RELEASE go run generate.go)
  build_in "$dir" "kubernetes provider" "$1/bin" \
    "-X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$KUBERNETES_PROVIDER_RELEASE" \
    ./cmd/pulumi-resource-kubernetes
}

steps=(etcd kube kwok pulumi kubernetes_provider)
if [ "${1:-}" = "--paths" ]; then
  for step in "${steps[@]}"; do echo "$step=$(tool_dir "$step")"; done
  exit
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/codai-tools-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
if [ "${1:-}" = "--probe" ]; then probe; exit; fi

missing=()
for step in "${steps[@]}"; do
  [ -f "$(tool_dir "$step")/.complete" ] || missing+=("$step")
done
if [ ${#missing[@]} -eq 0 ]; then
  say "all tools built in $CODAI_TOOLS_HOME"
  exit 0
fi

say "building ${missing[*]} into $CODAI_TOOLS_HOME (a cold build takes about 30 minutes on 2 cores; Go's caches make the next one fast)"
probe
n=0
for step in "${missing[@]}"; do
  n=$((n + 1))
  dest=$(tool_dir "$step")
  say "[$n/${#missing[@]}] $step -> $dest"
  started=$(date +%s)
  rm -rf "$dest.partial" && mkdir -p "$dest.partial"
  "build_$step" "$dest.partial"
  rm -rf "$dest" && mv "$dest.partial" "$dest" && touch "$dest/.complete"
  say "[$n/${#missing[@]}] $step built in $(( $(date +%s) - started )) s"
done

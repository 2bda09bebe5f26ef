# Shared by the local cluster's scripts: where each built tool lives. Source versions.sh first.
# A tool's folder is keyed by its version and the Go version, so a bump builds it anew and
# nothing else; CODAI_TOOLS_HOME moves the whole cache.
CODAI_TOOLS_HOME=${CODAI_TOOLS_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/codai-platform/tools}
export CODAI_TOOLS_HOME

_go_version=$(go env GOVERSION 2>/dev/null || echo nogo)

# tool_dir STEP: the folder of one built tool (STEP as in build.sh).
tool_dir() {
  case $1 in
    etcd) echo "$CODAI_TOOLS_HOME/etcd-$ETCD_VERSION-$_go_version" ;;
    kube) echo "$CODAI_TOOLS_HOME/kubernetes-$KUBERNETES_VERSION-$_go_version" ;;
    kwok) echo "$CODAI_TOOLS_HOME/kwok-$KWOK_VERSION-$_go_version" ;;
    pulumi) echo "$CODAI_TOOLS_HOME/pulumi-$PULUMI_VERSION-$_go_version" ;;
    kubernetes_provider) echo "$CODAI_TOOLS_HOME/pulumi-resource-kubernetes-$KUBERNETES_PROVIDER_MODULE-$_go_version" ;;
    *) echo "unknown tool $1" >&2; return 1 ;;
  esac
}

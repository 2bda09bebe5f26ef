# Versions of the tools the local cluster is built from (tools/cluster/build.sh), one place.
# Sourced by the shell scripts; read by tools/cluster/paths.py. Plain NAME=value lines only.
#
# Where the version we run elsewhere is not served by the Go module proxy this project can
# reach, the nearest served one is used and the reason is written beside it
# (docs/local-cluster.md lists what was refused).

# Inside the stacks' environment.kubernetes range (1.30 - 1.34).
KUBERNETES_VERSION=v1.34.4
ETCD_VERSION=v3.6.16
KWOK_VERSION=v0.8.0
# requirements.txt pins the SDK at 3.272.0; pkg/v3 v3.272.0 is refused by the proxy, v3.274.1 is
# the nearest served (a CLI newer than the SDK is supported, the reverse is not).
PULUMI_VERSION=v3.274.1
# The SDK asks for kubernetes 4.34.2. provider/v4 has no tags and the proxy serves one commit
# only: f47bc2d6f199, the v4.25.0 release. It is installed as the plugin the SDK asks for.
KUBERNETES_PROVIDER_MODULE=v4.0.0-20260115033456-f47bc2d6f199
KUBERNETES_PROVIDER_RELEASE=4.25.0
KUBERNETES_PROVIDER_PLUGIN=4.34.2
# The SDK asks for random 4.21.4; the proxy serves no commit of pulumi-random/provider/v4
# (refused: every release commit v4.19.0 - v4.21.1 tried), so tools/cluster/random_provider.py
# stands in for it on the local cluster only.
RANDOM_PROVIDER_PLUGIN=4.21.4
# The CRDs the stacks use, vendored under vendor/crds/ by tools/cluster/vendor-crds.sh.
PROMETHEUS_OPERATOR_VERSION=v0.93.0
CERT_MANAGER_VERSION=v1.21.2
# CloudNativePG (postgresql.cnpg.io/v1: Cluster, Pooler, ScheduledBackup, Backup, Database). The proxy
# refuses the version list; v1.29.2 is served but the checksum database has no entry for it
# (404), so v1.29.1 is the newest 1.2x release that go mod download verifies.
CLOUDNATIVE_PG_VERSION=v1.29.1

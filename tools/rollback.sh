#!/usr/bin/env bash
# Roll a stack back to the last commit that deployed it cleanly (docs/rollouts.md#rollback):
#
#   tools/rollback.sh STACK [COMMIT]
#
# COMMIT defaults to the stack's tag codai:last-good-commit, set by the deploy workflow after
# each successful `pulumi up`. The program and the stack file of that commit are checked out
# into a scratch worktree and applied with `pulumi up` and the policy pack, as any deploy.
# Stateful resources are never replaced by it: a release only changes Deployments.
set -euo pipefail
stack=${1:?usage: tools/rollback.sh STACK [COMMIT]}
commit=${2:-$(pulumi stack tag get codai:last-good-commit --stack "$stack")}
root=$(git rev-parse --show-toplevel)
worktree=$(mktemp -d "${TMPDIR:-/tmp}/codai-rollback.XXXXXX")
trap 'git -C "$root" worktree remove --force "$worktree" >/dev/null 2>&1 || true' EXIT

echo "rolling $stack back to $commit"
git -C "$root" worktree add --detach "$worktree" "$commit" >/dev/null
cd "$worktree"
make .venv/.runtime-installed policy/venv/.installed >/dev/null
pulumi up --yes --non-interactive --stack "$stack" --policy-pack policy --diff

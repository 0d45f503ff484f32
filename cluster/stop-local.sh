#!/usr/bin/env bash
# Stop the cluster start-local.sh started, and only it: every process whose command line names
# its temp directory. (`ray stop --force` would stop every Ray process of this user.)
set -euo pipefail
temp_dir=${SOPY_CLUSTER_TMP:-/tmp/sopy-cluster}
pids=$(pgrep -f -- "$temp_dir" || true)
[ -n "$pids" ] && kill -9 $pids
echo "stopped ${pids:-nothing} (processes of $temp_dir)"

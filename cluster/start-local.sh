#!/usr/bin/env bash
# Start a 3-node Ray cluster on this machine (a head and two workers) for sopy_actors.
# Connect with: sopy_actors.init("auto") or `sopy-actors run FILE.py --address auto`.
# Stop with: cluster/stop-local.sh (stops only this cluster's processes: they use its temp dir)
set -euo pipefail
export RAY_AUTH_MODE=token   # every node and explicit-address driver needs it (Ray 2.60)
port=${SOPY_HEAD_PORT:-26379}
temp_dir=${SOPY_CLUSTER_TMP:-/tmp/sopy-cluster}   # every node of this cluster lives under it
ray start --head --port="$port" --temp-dir="$temp_dir" --num-cpus=1 --resources='{"head": 1}' --disable-usage-stats
for i in 1 2; do
    ray start --address="127.0.0.1:$port" --num-cpus=2 --dashboard-agent-listen-port=$((52365 + i))
done
# Worker nodes register a moment after `ray start` returns: wait for all three.
for _ in $(seq 60); do
    [ "$(ray status 2>/dev/null | grep -c ' node_')" -ge 3 ] && break
    sleep 1
done
ray status

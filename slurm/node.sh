#!/bin/bash
# What one node of slurm/generate.sbatch does (srun starts it once per node; not meant to be run by hand):
#   1. write this node's copy of the config (ip: 127.0.0.1, its own run_dir) with slurm/helper.py;
#   2. start the node's vLLM servers with vllm_start.py, unless the mode never asks a model (vote, judge with the
#      rule backends);
#   3. run its CLIENTS_PER_NODE shards: infer.py -c <node config> -m MODE -l <rank> -g <world> -s RUN, where
#      rank = SLURM_NODEID * CLIENTS_PER_NODE + i and world = SLURM_NNODES * CLIENTS_PER_NODE (those an earlier
#      attempt finished are skipped, and a node with none left starts no server);
#   4. stop the servers, whether the shards finished, failed or the job was cancelled (SIGTERM).
# Environment from generate.sbatch: CONFIG, RUN, MODE, CLIENTS_PER_NODE, PYTHON, LOG_DIR.
set -uo pipefail

node=${SLURMD_NODENAME:-$(hostname -s)}
k=$CLIENTS_PER_NODE
world=$(( SLURM_NNODES * k ))
node_cfg=$LOG_DIR/config-$MODE-$node.yaml
say() { echo "$(date '+%F %T') $node: $*"; }

servers=$("$PYTHON" slurm/helper.py node "$CONFIG" "$MODE" "$node" "$node_cfg") || exit 1
mine=$(seq $(( SLURM_NODEID * k )) $(( SLURM_NODEID * k + k - 1 )))
# Shards an earlier attempt finished (no null record left) are skipped, so a node whose share is done does not spend
# minutes starting servers for nothing when a chain is resubmitted.
todo=$("$PYTHON" slurm/helper.py pending "$node_cfg" "$MODE" "$RUN" "$world" $mine) || exit 1
if [ -z "$todo" ]; then
  say "shards $(echo $mine) of $world are finished already; nothing to do"
  exit 0
fi

clients=()
stopping=
cleanup() {
  [ -n "$stopping" ] && return
  stopping=1
  for pid in ${clients[@]+"${clients[@]}"}; do kill -TERM "$pid" 2>/dev/null; done
  for pid in ${clients[@]+"${clients[@]}"}; do wait "$pid" 2>/dev/null; done
  if [ "$servers" = servers ]; then
    say "stopping the servers"
    "$PYTHON" vllm_start.py -c "$node_cfg" --stop
  fi
}
trap 'say "SIGTERM: stopping the shards"; cleanup; exit 143' TERM INT
trap cleanup EXIT

if [ "$servers" = servers ]; then
  say "starting the servers of $node_cfg"
  "$PYTHON" vllm_start.py -c "$node_cfg" &
  # In the background so that a SIGTERM during the (long) start reaches the trap at once.
  wait $! || { say "the servers did not come up (see their logs above and in the config's run_dir)"; exit 1; }
fi

for rank in $todo; do
  log=$LOG_DIR/$MODE-$SLURM_JOB_ID-shard${rank}_$world.log
  say "shard $rank of $world -> $log"
  "$PYTHON" infer.py -c "$node_cfg" -m "$MODE" -l "$rank" -g "$world" -s "$RUN" >>"$log" 2>&1 &
  clients+=($!)
done

rc=0
for pid in ${clients[@]+"${clients[@]}"}; do
  wait "$pid" || rc=$?
done
say "shards done (exit status $rc)"
exit "$rc"

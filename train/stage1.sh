#!/usr/bin/env bash
# Stage 1 SFT: Qwen3-0.6B on the short-CoT data -> the stage-1 model (ReasonLite-0.6B-Turbo), with train/sft.py.
#
#   bash train/stage1.sh <machine_rank> <main_process_ip>       # on each of the seed's 4 nodes x 8 GPUs
#   NUM_MACHINES=1 NUM_PROCESSES=8 bash train/stage1.sh 0        # one node
#   CONFIG=train/config_tiny.yaml ACCELERATE_CONFIG=train/accelerate/ddp.yaml NUM_MACHINES=1 NUM_PROCESSES=2 \
#     OMP_NUM_THREADS=1 bash train/stage1.sh 0                   # the CPU path: 2 processes over gloo
#
# Arguments win over the environment: MACHINE_RANK, MAIN_PROCESS_IP (needed with more than one machine),
# MAIN_PROCESS_PORT (8848, the seed's), NUM_MACHINES (4), NUM_PROCESSES (all machines together; default 8 per
# machine), ACCELERATE_CONFIG (train/accelerate/zero1.yaml, as the seed), CONFIG (train/config_stage1.yaml),
# PYTHON (.venv/bin/python, else python3). Flags after the arguments go to sft.py and override the config,
# e.g. `--max_steps 10`.
#
# After a node failure or a preemption, run the same command again: it resumes from the newest whole checkpoint-N
# in output_dir (a save cut short is skipped). `--resume_from_checkpoint false` starts over.
set -euo pipefail
# --help: the comment above, on stdout
case ${1:-} in -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;; esac
cd "$(dirname "$0")/.."

machine_rank=${MACHINE_RANK:-0}
main_process_ip=${MAIN_PROCESS_IP:-}
# Positional arguments end at the first --flag, so `stage1.sh 0 --max_steps 5` works on one machine.
if [ $# -gt 0 ] && [[ $1 != --* ]]; then machine_rank=$1; shift; fi
if [ $# -gt 0 ] && [[ $1 != --* ]]; then main_process_ip=${1:-$main_process_ip}; shift; fi
num_machines=${NUM_MACHINES:-4}
num_processes=${NUM_PROCESSES:-$(( num_machines * 8 ))}
config=${CONFIG:-train/config_stage1.yaml}
accelerate_config=${ACCELERATE_CONFIG:-train/accelerate/zero1.yaml}

if [ -z "$main_process_ip" ]; then
  if [ "$num_machines" -gt 1 ]; then
    echo "error: $num_machines machines need the main process IP: bash $0 <machine_rank> <main_process_ip>" >&2
    exit 1
  fi
  main_process_ip=127.0.0.1
fi
for f in "$config" "$accelerate_config"; do
  [ -f "$f" ] || { echo "error: $f: no such file" >&2; exit 1; }
done

export WANDB_DISABLED=true
export NCCL_DEBUG=${NCCL_DEBUG:-INFO}
export NCCL_IB_DISABLE=${NCCL_IB_DISABLE:-1}

# The project's .venv where `make setup` made one (on GPU images it sees the image's packages too).
python=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}

exec "$python" -m accelerate.commands.launch \
  --config_file "$accelerate_config" \
  --num_machines "$num_machines" \
  --num_processes "$num_processes" \
  --machine_rank "$machine_rank" \
  --main_process_ip "$main_process_ip" \
  --main_process_port "${MAIN_PROCESS_PORT:-8848}" \
  train/sft.py --config "$config" "$@"

#!/usr/bin/env bash
# Stage 2 SFT: the stage-1 model on the long-CoT data -> the stage-2 model (ReasonLite-0.6B).
#
#   bash train/stage2.sh <machine_rank> <main_process_ip>       # on each of the seed's 4 nodes x 8 GPUs
#
# The same launcher as stage1.sh (see there for the environment variables) with train/config_stage2.yaml, whose
# model_name_or_path is stage 1's output_dir.
case ${1:-} in -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
export CONFIG=${CONFIG:-train/config_stage2.yaml}
exec bash "$(dirname "$0")/stage1.sh" "$@"

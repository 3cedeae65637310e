#!/bin/bash
# Submit the pipeline's Slurm jobs with plain sbatch, chained by dependencies.
#
#   bash slurm/submit.sh generate CONFIG [--nodes N] [--clients-per-node K] [--run NAME] [--then MODES]
#   bash slurm/submit.sh label MODE CONFIG --run NAME [--clients-per-node K]
#   bash slurm/submit.sh train stage1|stage2 [--nodes N] [--procs-per-node P] [--config YAML] [--accelerate YAML]
#                                            [-- SFT_FLAGS...]
#   bash slurm/submit.sh eval EVAL_CONFIG [--run NAME]
# Options of every command: --gpus-per-node G, --time T, --after JOBID (start after it succeeds),
#   --sbatch OPTION (repeatable: any sbatch option, e.g. --sbatch --partition=gpu --sbatch --account=me),
#   --dry-run (print the sbatch commands instead of running them).
#
# Examples:
#   bash slurm/submit.sh generate config/oss.yaml --nodes 4 --gpus-per-node 8      # infer, then vote, judge, judge_vote
#   bash slurm/submit.sh generate config/oss.yaml --nodes 4 --run 20250101_120000  # resume that run after a scancel
#   bash slurm/submit.sh train stage1 --nodes 4 --gpus-per-node 8
#   bash slurm/submit.sh eval eval/config/eval.yaml --gpus-per-node 8
#   python3 slurm/status.py config/oss.yaml --run 20250101_120000                    # which shards are done
#
# generate submits infer.py -m infer on N nodes (slurm/generate.sbatch), then, each as its own job with
# --dependency=afterok, vote and judge (after infer) and judge_vote (after vote); --then picks those (default
# vote,judge,judge_vote; none for no labels). All of them write run folder NAME of their stage (default: a timestamp
# taken now, the pipeline's own naming, so later stages pick it as the newest); submitting again with the same
# --run resumes every unfinished shard. Label jobs run on one node and start servers only when their backend asks
# the model (vote_backend: llm, judge_backend: llm or hybrid). Paths may be given from any directory; the jobs run
# in the repository root. SBATCH_* environment variables (SBATCH_PARTITION, SBATCH_ACCOUNT, ...) work as usual.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$( [ -x "$root/.venv/bin/python" ] && echo "$root/.venv/bin/python" || echo python3 )}
# usage: the help (asked for: stdout, exit 0; a command line it cannot read: stderr, exit 2)
usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
help() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0; }
die() { echo "error: $*" >&2; exit 2; }
abspath() { case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
in_root() { case $1 in /*) echo "$1" ;; *) echo "$root/$1" ;; esac; }

[ $# -ge 1 ] || usage
cmd=$1; shift
mode= stage= config= accelerate= procs= nodes=1 clients=1 run= then=vote,judge,judge_vote after= gpus= time= dry=
sbatch_opts=() sft_flags=()
case $cmd in
  generate|eval) [ $# -ge 1 ] || usage; config=$1; shift ;;
  label) [ $# -ge 2 ] || usage; mode=$1; config=$2; shift 2
         case $mode in vote|judge|judge_vote) ;; *) die "label MODE: vote, judge or judge_vote, not $mode" ;; esac ;;
  train) [ $# -ge 1 ] || usage; stage=$1; shift
         case $stage in stage1|stage2) ;; *) die "train: stage1 or stage2, not $stage" ;; esac ;;
  -h|--help) help ;;
  *) die "unknown command $cmd (generate, label, train, eval)" ;;
esac
while [ $# -gt 0 ]; do
  case $1 in
    --nodes) nodes=$2; shift 2 ;;
    --clients-per-node) clients=$2; shift 2 ;;
    --run) run=$2; shift 2 ;;
    --then) then=$2; shift 2 ;;
    --after) after=$2; shift 2 ;;
    --gpus-per-node) gpus=$2; shift 2 ;;
    --time) time=$2; shift 2 ;;
    --config) config=$2; shift 2 ;;
    --accelerate) accelerate=$2; shift 2 ;;
    --procs-per-node) procs=$2; shift 2 ;;
    --sbatch) sbatch_opts+=("$2"); shift 2 ;;
    --dry-run) dry=1; shift ;;
    --) shift; sft_flags=("$@"); break ;;
    *) die "unknown option $1 (see: bash $0 --help)" ;;
  esac
done
[[ $nodes =~ ^[1-9][0-9]*$ ]] || die "--nodes $nodes: a positive number"
[[ $clients =~ ^[1-9][0-9]*$ ]] || die "--clients-per-node $clients: a positive number"
run=${run:-$(date +%Y%m%d_%H%M%S)}
# The pipeline's rule for run folder names (infer.py -s): no path, nothing a shell or Slurm would read specially.
[[ $run =~ ^[A-Za-z0-9][A-Za-z0-9_.:-]*$ ]] || die "--run $run: letters, digits and _ . : - only"
[ -n "$config" ] && { [ -f "$config" ] || die "$config: no such file"; config=$(abspath "$config"); }
[ -n "$accelerate" ] && { [ -f "$accelerate" ] || die "$accelerate: no such file"; accelerate=$(abspath "$accelerate"); }
common=(--parsable --chdir="$root")
[ -n "$gpus" ] && common+=(--gpus-per-node="$gpus")
[ -n "$time" ] && common+=(--time="$time")
common+=(${sbatch_opts[@]+"${sbatch_opts[@]}"})

submitted=()
# submit NAME LOG_DIR DEPENDENCY VAR=VALUE... -- SBATCH_ARGS... ; prints the job id
submit() {
  local name=$1 logs=$2 dep=$3; shift 3
  local envs=()
  while [ "$1" != -- ]; do envs+=("$1"); shift; done
  shift
  local argv=(sbatch ${common[@]+"${common[@]}"} --job-name="$name" --output="$logs/%x-%j.out")
  # --kill-on-invalid-dep: when the job it waits for fails or is cancelled, this one goes too instead of pending
  # forever; a requeued job is neither, so its dependents keep waiting through requeues.
  [ -n "$dep" ] && argv+=(--dependency="afterok:$dep" --kill-on-invalid-dep=yes)
  argv+=("$@")
  if [ -n "$dry" ]; then
    echo "mkdir -p $logs && env ${envs[*]} ${argv[*]}" >&2
    echo "DRY$(( ${#submitted[@]} + 1 ))"
    return
  fi
  mkdir -p "$logs"  # sbatch does not create the folder of --output; without it the job fails before it starts
  env ${envs[@]+"${envs[@]}"} "${argv[@]}"
}

note() { echo "$*"; }
stage_of() {
  case $1 in
    infer) echo answer_origin ;; vote) echo vote ;; judge) echo answer_judge ;; judge_vote) echo answer_judge_vote ;;
  esac
}

case $cmd in
  generate|label)
    base=$(in_root "$(cd "$root" && "$python" slurm/helper.py base "$config")") || exit 1
    pipe_env=(CONFIG="$config" RUN="$run" PYTHON="$python")
    if [ "$cmd" = generate ]; then
      logs=$base/answer_origin/$run/logs
      job=$(submit "rl-infer-$run" "$logs" "$after" "${pipe_env[@]}" MODE=infer CLIENTS_PER_NODE="$clients" \
              LOG_DIR="$logs" -- --nodes="$nodes" "$root/slurm/generate.sbatch")
      submitted+=("$job"); note "job $job: infer on $nodes node(s), $clients shard(s) each -> $base/answer_origin/$run"
      shown_logs=$logs
      declare -A ids=([infer]=$job)
      labels=${then//,/ }; [ "$labels" = none ] && labels=
      for m in $labels; do
        case $m in vote|judge) dep=${ids[infer]} ;; judge_vote) dep=${ids[vote]:-${ids[infer]}} ;;
          *) die "--then $then: vote, judge, judge_vote or none" ;; esac
        logs=$base/$(stage_of "$m")/$run/logs
        ids[$m]=$(submit "rl-$m-$run" "$logs" "$dep" "${pipe_env[@]}" MODE="$m" CLIENTS_PER_NODE=1 LOG_DIR="$logs" \
                    -- --nodes=1 "$root/slurm/generate.sbatch")
        submitted+=("${ids[$m]}"); note "job ${ids[$m]}: $m after job $dep -> $base/$(stage_of "$m")/$run"
      done
    else
      logs=$base/$(stage_of "$mode")/$run/logs
      job=$(submit "rl-$mode-$run" "$logs" "$after" "${pipe_env[@]}" MODE="$mode" CLIENTS_PER_NODE="$clients" \
              LOG_DIR="$logs" -- --nodes=1 "$root/slurm/generate.sbatch")
      submitted+=("$job"); note "job $job: $mode -> $base/$(stage_of "$mode")/$run"
    fi
    note "progress: $python $root/slurm/status.py $config --run $run"
    if [ "$cmd" = generate ]; then
      note "resume after a scancel: bash $0 generate $config --nodes $nodes --clients-per-node $clients" \
           "--run $run --then $then"
    else
      note "resume after a scancel: bash $0 label $mode $config --clients-per-node $clients --run $run"
    fi
    ;;
  train)
    train_config=${config:-$root/train/config_$stage.yaml}
    out=$(cd "$root" && "$python" slurm/helper.py train-output "$train_config" ${sft_flags[@]+"${sft_flags[@]}"}) \
      || exit 1
    logs=$(in_root "$out")/logs
    envs=(STAGE="$stage" CONFIG="$train_config" PYTHON="$python" LOG_DIR="$logs")
    [ -n "$accelerate" ] && envs+=(ACCELERATE_CONFIG="$accelerate")
    [ -n "$procs" ] && envs+=(PROCS_PER_NODE="$procs")
    job=$(submit "rl-train-$stage" "$logs" "$after" ${envs[@]+"${envs[@]}"} -- --nodes="$nodes" "$root/slurm/train.sbatch" \
            ${sft_flags[@]+"${sft_flags[@]}"})
    submitted+=("$job"); note "job $job: $stage on $nodes node(s) -> $(in_root "$out")"
    ;;
  eval)
    results=$root/eval/result
    logs=$results/$run/logs
    job=$(submit "rl-eval-$run" "$logs" "$after" EVAL_CONFIG="$config" RUN="$run" PYTHON="$python" LOG_DIR="$logs" \
            -- --nodes=1 "$root/slurm/eval.sbatch")
    submitted+=("$job"); note "job $job: evaluation of $config -> $results/$run"
    ;;
esac
note "logs: ${shown_logs:-$logs}${shown_logs:+ (and logs/ in the run folder of each label stage)}"
note "cancel: scancel ${submitted[*]}"

"""Where a run stands, stage by stage: which shards are finished, which are partial (and how far) and which are
missing, plus the Slurm jobs of that run still in the queue.

    python3 slurm/status.py config/oss.yaml                       # the newest run folder of each stage
    python3 slurm/status.py config/oss.yaml --run 20250101_120000  # that run (the name given to submit.sh --run)

A shard is `finished` once infer.py renamed its .part file (it may still hold null records, answers that failed for
good or undecided judgments, which rerunning the same job redoes), `partial` while its .part file grows (a running
or interrupted shard), `missing` when no file exists yet. For answer_origin the expected count per shard comes from
info.jsonl and num_answer. Only whole lines are counted, as a resuming shard keeps exactly those.
"""
import argparse
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from helper import STAGES  # slurm/helper.py: python puts this script's folder first on the path
from reasonlite import config, jsonl


def count_lines(path, null_marker=None):
    """(whole lines, lines holding null_marker), streaming; a torn last line is not counted."""
    lines = nulls = 0
    with open(path, "rb") as f:
        for raw in f:
            if not raw.endswith(b"\n"):
                break
            lines += 1
            if null_marker is not None and null_marker in raw:
                nulls += 1
    return lines, nulls


def expected_per_shard(cfg, world):
    """{rank: records} of answer_origin for a world of shards, as the runner assigns them; None without info."""
    info = config.info_path(cfg)
    if not info.exists():
        return None
    counts = Counter()
    for lineno, rec in jsonl.read_records(info):
        index = str(rec.get("index", lineno - 1))
        for j in range(cfg.num_answer):
            counts[jsonl.shard_of(f"{index}_{j}", world)] += 1
    return counts


def stage_report(cfg, stage, run, null_marker):
    stage_dir = Path(cfg.base_data_path) / stage
    if run is None:
        folders = jsonl.run_folders(stage_dir)
        if not folders:
            return [f"{stage}: no run folder"]
        folder = folders[-1]
    else:
        folder = stage_dir / run
        if not folder.is_dir():
            return [f"{stage}/{run}: not started"]
    files = jsonl.shard_files(folder)
    if not files:
        return [f"{stage}/{folder.name}: no shard started yet"]
    worlds = sorted({w for _, w, _ in files})
    lines = []
    for world in worlds:
        expected = expected_per_shard(cfg, world) if stage == "answer_origin" else None
        finished = 0
        rows = []
        for rank in range(world):
            final, part = files.get((rank, world, False)), files.get((rank, world, True))
            of = f" of {expected[rank]}" if expected is not None else ""
            if final is not None and part is None:
                n, nulls = count_lines(final, null_marker)
                finished += 1
                extra = f", {nulls} null (rerun the job to redo them)" if nulls else ""
                rows.append(f"  {rank}_{world}  finished  {n}{of} records{extra}")
            elif part is not None:
                n, _ = count_lines(part)
                rows.append(f"  {rank}_{world}  partial   {n}{of} records in {part.name}")
            else:
                rows.append(f"  {rank}_{world}  missing")
        state = "complete" if jsonl.is_complete(folder) else "incomplete"
        lines.append(f"{stage}/{folder.name}: {state}, {finished} of {world} shards finished")
        lines += rows
    if len(worlds) > 1:
        lines.append(f"  warning: shards of {len(worlds)} different worlds ({worlds}) in one folder")
    logs = folder / "logs"
    if logs.is_dir():
        lines.append(f"  logs: {logs}")
    return lines


def slurm_jobs(run):
    """Lines of `squeue` for the jobs slurm/submit.sh named after this run, or [] without Slurm."""
    if run is None or not shutil.which("squeue"):
        return []
    try:
        proc = subprocess.run(["squeue", "-h", "-o", "%i|%j|%T|%M|%D|%R"], capture_output=True, text=True,
                              timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    jobs = []
    for line in proc.stdout.splitlines():
        parts = line.split("|")
        if len(parts) == 6 and parts[1].startswith("rl-") and parts[1].endswith(f"-{run}"):
            job, name, state, elapsed, nodes, reason = parts
            jobs.append(f"  job {job} {name}: {state} {elapsed} on {nodes} node(s) {reason}")
    return ["slurm jobs of this run:"] + jobs if jobs else ["slurm jobs of this run: none queued or running"]


def main():
    parser = argparse.ArgumentParser(description="Which shards of a run are finished, partial or missing.")
    parser.add_argument("config", help="the pipeline config the jobs ran with")
    parser.add_argument("--run", help="the run folder name (default: the newest folder of each stage)")
    args = parser.parse_args()
    try:
        cfg = config.load(args.config)
        print(f"{cfg.base_data_path}:")
        for stage, marker in STAGES.values():
            print("\n".join(stage_report(cfg, stage, args.run, marker)))
    except (config.ConfigError, jsonl.DataError) as e:
        sys.exit(f"error: {e}")
    out = slurm_jobs(args.run)
    if out:
        print("\n".join(out))


if __name__ == "__main__":
    main()

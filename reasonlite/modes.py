"""The four modes of infer.py, by name, and the command that runs one of them for one shard.

    python3 infer.py -c config/oss.yaml -m infer|vote|judge|judge_vote [-l RANK -g WORLD] [-s RUN]

infer is reasonlite/generation.py (reasonlite/adaptive.py under `sampling: adaptive`); vote, judge and judge_vote are
reasonlite/labels.py, and write problems.jsonl and a funnel once their run folder is complete
(reasonlite/problem_stats.py); reasonlite/runner.py does what they share (input checks, carry-over, resume, writing).
"""
import argparse
from pathlib import Path

from reasonlite import config, jsonl, runner
from reasonlite.cli import add_debug_flag, user_errors
from reasonlite.generation import Infer
from reasonlite.labels import Judge, JudgeVote, Vote

STAGES = {"infer": Infer, "vote": Vote, "judge": Judge, "judge_vote": JudgeVote}


def refuse_a_busy_shard(cfg, mode, rank, world, save_name):
    """Stop at once when another process writes this shard (a named run only: a new timestamp is a new folder),
    before a stage loads its tokenizer or grader, which takes a minute where another run keeps the CPU busy."""
    if save_name is None or not runner.NAME_RE.match(save_name) or not 0 <= rank < world:
        return  # nothing to look at, or an argument the runner refuses with its own line
    folder = Path(cfg.base_data_path) / (cfg.get("new_data_name") or STAGES[mode].name) / save_name
    lock = jsonl.ShardLock(folder / f"{rank}_{world}.jsonl")
    holder = lock.holder_if_held()
    if holder:
        raise lock.busy_error(holder)


def run(cfg, mode, rank=0, world=1, save_name=None):
    """Run one mode for one shard of the work; returns the shard file it completed."""
    refuse_a_busy_shard(cfg, mode, rank, world, save_name)
    if mode == "infer" and cfg.get("sampling") == "adaptive":  # rounds per problem: reasonlite/adaptive.py (#14)
        from reasonlite.adaptive import Adaptive
        return Adaptive(cfg).run(rank, world, save_name)
    stage = STAGES[mode](cfg)
    try:
        final = runner.run(stage, rank, world, save_name)
        if mode != "infer":  # problems.jsonl and the funnel, once the run folder is complete (#14)
            from reasonlite.problem_stats import after_label_stage
            after_label_stage(stage, final)
        return final
    finally:
        stage.close()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="infer.py", description="Run one mode of the data pipeline.")
    # Required: a default would send requests to whatever answers on the default ports (another job's servers).
    parser.add_argument("-c", "--config-path", required=True,
                        help="the pipeline config: config/oss.yaml (the seed's 8 GPUs), config/demo.yaml (this CPU)")
    parser.add_argument("-m", "--mode", choices=sorted(STAGES), help="default: the config's `mode`")
    parser.add_argument("-l", "--local_rank", type=int, default=0, help="this shard's rank")
    parser.add_argument("-g", "--global_size", type=int, default=1, help="number of shards")
    parser.add_argument("-s", "--save_file", default=None, help="run folder name instead of a timestamp")
    parser.add_argument("--check", action="store_true", help="check the config, data, servers' flags, limits and "
                        "disk; send no request (reasonlite/preflight.py)")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    with user_errors(args.debug):
        cfg = config.load(args.config_path)
        if args.check:
            from reasonlite import preflight
            preflight.check_pipeline(cfg, "infer")
            return
        from reasonlite.devices import raise_open_files_limit
        raise_open_files_limit()  # a socket per request in flight: thousands per server
        run(cfg, args.mode or cfg.mode, args.local_rank, args.global_size, args.save_file)

"""The four modes of infer.py, by name, and the command that runs one of them for one shard.

    python3 infer.py -c config/oss.yaml -m infer|vote|judge|judge_vote [-l RANK -g WORLD] [-s RUN]

infer is reasonlite/generation.py; vote, judge and judge_vote are reasonlite/labels.py; reasonlite/runner.py does
what they share (input checks, carry-over, resume, writing).
"""
import argparse

from reasonlite import config, runner
from reasonlite.cli import add_debug_flag, user_errors
from reasonlite.generation import Infer
from reasonlite.labels import Judge, JudgeVote, Vote

STAGES = {"infer": Infer, "vote": Vote, "judge": Judge, "judge_vote": JudgeVote}


def run(cfg, mode, rank=0, world=1, save_name=None):
    """Run one mode for one shard of the work; returns the shard file it completed."""
    stage = STAGES[mode](cfg)
    try:
        return runner.run(stage, rank, world, save_name)
    finally:
        stage.close()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="infer.py", description="Run one mode of the data pipeline.")
    parser.add_argument("-c", "--config-path", default="config/oss.yaml")
    parser.add_argument("-m", "--mode", choices=sorted(STAGES), help="default: the config's `mode`")
    parser.add_argument("-l", "--local_rank", type=int, default=0, help="this shard's rank")
    parser.add_argument("-g", "--global_size", type=int, default=1, help="number of shards")
    parser.add_argument("-s", "--save_file", default=None, help="run folder name instead of a timestamp")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    with user_errors(args.debug):
        cfg = config.load(args.config_path)
        run(cfg, args.mode or cfg.mode, args.local_rank, args.global_size, args.save_file)

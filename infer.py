"""Run one mode of the data pipeline over the latest data of an experiment.

    python3 infer.py -c config/oss.yaml -m infer        # num_answer answers per problem -> answer_origin/<ts>/
    python3 infer.py -c config/oss.yaml -m infer -l 0 -g 4 -s run1   # shard 0 of 4, into answer_origin/run1/

Every mode writes `<base_data_path>/<stage>/<run>/<rank>_<world>.jsonl`. A rerun carries over what earlier runs
finished and does only the rest, so after a crash you run the same command again.
"""
import argparse

from utils import config, modes
from utils.cli import user_errors


def main():
    parser = argparse.ArgumentParser(description="Run one mode of the data pipeline.")
    parser.add_argument("-c", "--config-path", default="config/oss.yaml")
    parser.add_argument("-m", "--mode", choices=sorted(modes.STAGES), help="default: the config's `mode`")
    parser.add_argument("-l", "--local_rank", type=int, default=0, help="this shard's rank")
    parser.add_argument("-g", "--global_size", type=int, default=1, help="number of shards")
    parser.add_argument("-s", "--save_file", default=None, help="run folder name instead of a timestamp")
    args = parser.parse_args()
    with user_errors():
        cfg = config.load(args.config_path)
        modes.run(cfg, args.mode or cfg.mode, args.local_rank, args.global_size, args.save_file)


if __name__ == "__main__":
    main()

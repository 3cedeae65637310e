"""Bring up the vLLM servers of a config: one OpenAI-compatible server per group of `tp` devices.

    python3 vllm_start.py -c config/oss.yaml            # start, and wait until every server answers /health
    python3 vllm_start.py -c config/oss.yaml --status   # list them
    python3 vllm_start.py -c config/oss.yaml --stop     # stop the servers this config started

Ports are port_base + the first device of each group (8040, 8041, ... as in the seed). On a multi-node run, start
this on every node (with `host: 0.0.0.0`) and list the nodes under `ip` for infer.py.
"""
import argparse

from utils import config, servers
from utils.cli import user_errors


def main():
    parser = argparse.ArgumentParser(description="Start, list or stop the vLLM servers of a config.")
    parser.add_argument("-c", "--config-path", default="config/oss.yaml")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--stop", action="store_true", help="stop the servers started with this config")
    action.add_argument("--status", action="store_true", help="list the servers of this config")
    args = parser.parse_args()
    with user_errors():
        cfg = config.load(args.config_path)
        if args.stop:
            servers.stop(cfg)
        elif args.status:
            servers.status(cfg)
        else:
            servers.start(cfg)
            print("all servers are up: " + " ".join(servers.client_urls(cfg)))


if __name__ == "__main__":
    main()

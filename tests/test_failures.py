"""The failures clusters really have: preemption (SIGTERM), two writers on one shard, a full disk, a damaged line.

The server here is bench/stub_server.py answering by itself after --delay seconds: a stand-in that makes requests
take as long as a test needs (a real model can't be made slow on demand); it says so in its docstring. The prompts
are gpt-oss harmony prompts, which need no tokenizer, so these tests start no vLLM server.
"""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT, free_port, run_script, stub, stub_server, write_info, write_yaml

from reasonlite.jsonl import pid_alive
from reasonlite.signals import STOPPED_EXIT

pytestmark = pytest.mark.slow  # whole commands against a server process, with waits: tens of seconds

PROBLEMS = [(f"f:{i}", f"What is {i} + {i}?", str(2 * i)) for i in range(10)]


def config(tmp_path, port, base, **over):
    cfg = {"model_path": "stub/gpt-oss-stub", "prompt_format": "harmony", "device": "cpu", "gpu_index": [0],
           "port_base": port, "base_data_path": str(base), "num_answer": 4, "max_inflight_per_server": 4,
           "server_start_timeout": 30, "retry_backoff": 0.05, **over}
    return write_yaml(tmp_path / f"c{len(list(tmp_path.glob('c*.yaml')))}.yaml", cfg)


def start_infer(cfg, *extra):
    return subprocess.Popen([sys.executable, "infer.py", "-c", str(cfg), "-m", "infer", *extra], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})


def records_of(path):
    """Every line of a shard file must be a whole JSON record."""
    return [json.loads(line) for line in path.read_text().splitlines()]


def wait_for_records(part, n, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if part.exists() and len(part.read_bytes().splitlines()) >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"{part}: fewer than {n} records after {timeout} s")


EXPECTED = sorted(f"f:{i}_{j}" for i in range(10) for j in range(4))


def test_sigterm_keeps_the_answers_in_flight_and_a_rerun_completes(tmp_path):
    base = write_info(tmp_path / "exp", PROBLEMS)
    part = base / "answer_origin" / "run" / "0_1.jsonl.part"
    with stub(delay=1.0, stats=tmp_path / "stats.json") as port:
        cfg = config(tmp_path, port, base)
        proc = start_infer(cfg, "-s", "run")
        wait_for_records(part, 4)  # a first wave done, the next four in flight
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == STOPPED_EXIT, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("stopped by SIGTERM: ") and "rerun the same command" in last, err
    saved = records_of(part)
    served = json.loads((tmp_path / "stats.json").read_text())["by_path"]["/v1/completions"]
    # Every request the server answered is on disk (the four in flight at the signal included), and no new
    # request was started after it: the run stopped well short of the 40.
    assert len(saved) == served and 8 <= served < 40, (len(saved), served)
    assert all(r["answer"] for r in saved)
    with stub(delay=0.0) as port:
        assert run_script("infer.py", "-c", config(tmp_path, port, base), "-m", "infer", "-s", "run").returncode == 0
    done = records_of(base / "answer_origin" / "run" / "0_1.jsonl")
    assert sorted(r["index"] for r in done) == EXPECTED


def test_a_second_signal_stops_at_once_with_nothing_half_written(tmp_path):
    base = write_info(tmp_path / "exp", PROBLEMS)
    part = base / "answer_origin" / "run" / "0_1.jsonl.part"
    with stub(delay=0.3) as port:
        proc = start_infer(config(tmp_path, port, base, drain_timeout=60), "-s", "run")
        wait_for_records(part, 4)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == STOPPED_EXIT and time.monotonic() - t0 < 10, err
    assert len(set(r["index"] for r in records_of(part))) == len(records_of(part)) >= 4


def test_a_second_writer_on_the_same_shard_is_refused_and_a_dead_ones_lock_taken_over(tmp_path):
    base = write_info(tmp_path / "exp", PROBLEMS)
    part = base / "answer_origin" / "run" / "0_1.jsonl.part"
    lock = base / "answer_origin" / "run" / ".0_1.jsonl.lock"
    with stub(delay=0.5) as port:
        cfg = config(tmp_path, port, base)
        first = start_infer(cfg, "-s", "run")
        wait_for_records(part, 4)
        second = run_script("infer.py", "-c", cfg, "-m", "infer", "-s", "run", timeout=60)
        assert second.returncode == 1, second.stderr
        [line] = [x for x in second.stderr.splitlines() if x.strip()]
        assert line.startswith("error: ") and f"another process (pid {first.pid} on " in line, line
        first.send_signal(signal.SIGKILL)  # dies holding the lock: the kernel releases it, the file still names it
        first.wait()
        assert json.loads(lock.read_text())["pid"] == first.pid
        third = run_script("infer.py", "-c", config(tmp_path, port, base, max_inflight_per_server=40), "-m",
                           "infer", "-s", "run", timeout=120)
    assert third.returncode == 0, third.stderr
    assert f"taking over the lock of pid {first.pid}" in third.stderr
    assert sorted(r["index"] for r in records_of(base / "answer_origin" / "run" / "0_1.jsonl")) == EXPECTED
    assert lock.read_text() == ""  # released: an empty lock file names no one


@pytest.fixture
def tiny_disk(tmp_path):
    """A 96 KiB tmpfs: a disk that really fills up. Needs root (mount); skipped where mounting is not allowed."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(disk)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root); the write hook test covers the writer itself")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_a_full_disk_leaves_whole_records_and_a_rerun_after_freeing_space_completes(tmp_path, tiny_disk):
    base = write_info(tiny_disk / "exp", [(f"d:{i}", "Problem " + "x" * 300, "1") for i in range(40)])
    with stub(delay=0.0) as port:
        cfg = config(tmp_path, port, base, num_answer=8, max_inflight_per_server=8, flush_every=1)
        proc = run_script("infer.py", "-c", cfg, "-m", "infer", "-s", "run", timeout=120)
        assert proc.returncode == 1
        [line] = [x for x in proc.stderr.splitlines() if x.startswith("error: ")]
        part = base / "answer_origin" / "run" / "0_1.jsonl.part"
        assert line.startswith(f"error: {part}: cannot write (No space left on device; ") and "free there" in line
        saved = records_of(part)  # only whole records
        assert 0 < len(saved) < 320
        subprocess.run(["mount", "-o", "remount,size=8m", str(tiny_disk)], check=True)
        proc = run_script("infer.py", "-c", cfg, "-m", "infer", "-s", "run", timeout=120)
    assert proc.returncode == 0, proc.stderr
    done = records_of(base / "answer_origin" / "run" / "0_1.jsonl")
    assert sorted(r["index"] for r in done) == sorted(f"d:{i}_{j}" for i in range(40) for j in range(8))


def test_a_damaged_middle_line_is_named_skipped_and_redone(tmp_path):
    base = write_info(tmp_path / "exp", PROBLEMS)
    with stub(delay=0.0) as port:
        cfg = config(tmp_path, port, base, judge_backend="rule")
        assert run_script("infer.py", "-c", cfg, "-m", "infer", "-s", "a").returncode == 0
        shard = base / "answer_origin" / "a" / "0_1.jsonl"
        lines = shard.read_bytes().splitlines(keepends=True)
        lost = json.loads(lines[6])["index"]
        lines[6] = lines[6][:40] + b"\x00\x00 cut by a bad copy\n"
        shard.write_bytes(b"".join(lines))

        judge = run_script("infer.py", "-c", cfg, "-m", "judge", "-s", "j", timeout=120)
        assert judge.returncode == 0, judge.stderr
        # judge skips it; only infer can redo an answer, and the line says so
        assert f"{shard}:7: damaged line skipped" in judge.stderr
        assert "; a rerun of `infer.py -m infer` redoes its record" in judge.stderr
        assert "1 damaged lines skipped" in judge.stderr
        judged = records_of(base / "answer_judge" / "j" / "0_1.jsonl")
        assert len(judged) == 39 and lost not in {r["index"] for r in judged}
        shown = run_script("-m", "reasonlite.show", base)
        assert shown.returncode == 0 and f"{shard}:7: not valid" in shown.stdout, shown.stdout + shown.stderr

        # infer again: the damaged record is regenerated, the other 39 carried over
        again = run_script("infer.py", "-c", cfg, "-m", "infer", "-s", "b")
        assert again.returncode == 0 and "39 carried over, 1 new" in again.stderr, again.stderr
    assert sorted(r["index"] for r in records_of(base / "answer_origin" / "b" / "0_1.jsonl")) == EXPECTED


def test_sigterm_while_servers_start_stops_them(tiny_model, tmp_path):
    """vllm_start.py cancelled while its server is still starting (a job preempted early): the server, which runs
    in a session of its own and would outlive the job, is stopped, and the launcher exits 75."""
    port = free_port()
    cfg = write_yaml(tmp_path / "s.yaml", {"model_path": str(tiny_model), "device": "cpu", "gpu_index": [0],
                                           "port_base": port, "max_model_len": 512, "run_dir": str(tmp_path / "run"),
                                           "server_start_timeout": 600, "base_data_path": str(tmp_path / "exp")})
    proc = subprocess.Popen([sys.executable, "vllm_start.py", "-c", str(cfg)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    record = tmp_path / "run" / f"server_{port}.json"
    deadline = time.monotonic() + 60
    while not record.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    server_pid = json.loads(record.read_text())["pid"]
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == STOPPED_EXIT, err
    assert err.strip().splitlines()[-1].startswith("stopped by SIGTERM: the 1 servers this command started were "
                                                    "stopped"), err
    assert not pid_alive(server_pid) and not record.exists()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_waiting_for_servers_stops_at_once_and_leaves_nothing(tmp_path, sig):
    """Nothing answers on the port (the servers are still starting, or never will): SIGTERM or Ctrl-C ends the wait
    at once with exit 75, and no lock or empty .part is left behind."""
    base = write_info(tmp_path / "exp", PROBLEMS)
    cfg = config(tmp_path, free_port(), base, server_start_timeout=1800)
    proc = subprocess.Popen([sys.executable, "infer.py", "-c", str(cfg), "-m", "infer", "-s", "run"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    lock = base / "answer_origin" / "run" / ".0_1.jsonl.lock"
    deadline = time.monotonic() + 60
    while not lock.exists() and time.monotonic() < deadline:  # the shard is locked: it is waiting for the servers
        time.sleep(0.1)
    time.sleep(1.0)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == STOPPED_EXIT, err
    assert err.strip().splitlines()[-1] == (f"stopped by {sig.name}: stopped while waiting for the servers, before "
                                            "any request; 40 of this shard's 40 records left; rerun the same command "
                                            "to do them"), err
    assert not (base / "answer_origin").exists()  # no lock, no empty .part, no empty run folder


def test_a_server_that_serves_another_model_is_named_before_any_request(tmp_path):
    base = write_info(tmp_path / "exp", PROBLEMS)
    with stub_server(served_model_name="org/other-model", stats=tmp_path / "stats.json") as port:
        proc = run_script("infer.py", "-c", config(tmp_path, port, base), "-m", "infer", "-s", "run")
    assert proc.returncode == 1
    [line] = [x for x in proc.stderr.splitlines() if x.startswith("error: ")]
    assert line.startswith(f"error: server http://127.0.0.1:{port} serves org/other-model, not stub/gpt-oss-stub "
                           "(model_path of "), line
    assert "python3 vllm_start.py -c" in line
    assert json.loads((tmp_path / "stats.json").read_text())["by_path"].get("/v1/completions", 0) == 0


def test_a_busy_shard_is_refused_before_anything_slow_is_imported(tmp_path):
    """Another process holds the shard's lock: the refusal comes before the tokenizer or the grader is loaded."""
    import fcntl
    base = write_info(tmp_path / "exp", PROBLEMS)
    folder = base / "answer_judge" / "run"
    folder.mkdir(parents=True)
    with open(folder / ".0_1.jsonl.lock", "w") as held:
        held.write(json.dumps({"host": "node7", "pid": 4242, "started": "2026-12-02 15:10:00"}))
        held.flush()
        fcntl.flock(held, fcntl.LOCK_EX)
        cfg = config(tmp_path, free_port(), base, judge_backend="rule")
        proc = run_script("-X", "importtime", "infer.py", "-c", cfg, "-m", "judge", "-s", "run")
    assert proc.returncode == 1
    [line] = [x for x in proc.stderr.splitlines() if x.startswith("error: ")]
    assert line == (f"error: {folder}: another process (pid 4242 on node7, since 2026-12-02 15:10:00) is writing "
                    "this shard; wait for it or stop it, then rerun (two writers would duplicate records)"), line
    imported = {x.split("|")[-1].strip() for x in proc.stderr.splitlines() if x.startswith("import time:")}
    assert not {"transformers", "torch", "math_verify", "sympy"} & imported

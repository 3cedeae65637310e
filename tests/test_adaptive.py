"""Adaptive sampling (reasonlite/adaptive.py): its closing rules, its records, resuming after a crash, sharding.

The generator here is bench/stub_teacher.py's SimulatedTeacher, in-process (a stand-in with known difficulty, not a
model; it says so): answer j of a problem is a fixed function of (problem, j), as vLLM's seeded answers are on CPU,
so a resumed run must end with exactly the records of an uninterrupted one. The labels are the real grader's. The
slow tests at the end run infer.py against the same teacher served over HTTP, and kill it with SIGKILL and SIGTERM.
"""
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, free_port, run_script, wait_for_health, write_info, write_yaml

from reasonlite import config
from reasonlite.adaptive import Adaptive, close_reason, problem_target, round_end, vote_can_become_clear
from reasonlite.labels import vote_is_clear
from reasonlite.signals import STOPPED_EXIT

from bench.stub_teacher import SimulatedTeacher, make_problems  # bench/ from the repository root, as pytest runs

SETTINGS = {"first_round": 4, "round_size": 4, "target_correct": 4, "min_correct": 4, "max_answers": 24}


def make_cfg(tmp_path, base, **over):
    cfg = {"model_path": "stub/gpt-oss-sim", "prompt_format": "harmony", "device": "cpu", "gpu_index": [0],
           "base_data_path": str(base), "sampling": "adaptive", "judge_backend": "rule", "max_tokens": 30000,
           "flush_every": 4, **SETTINGS, **over}
    return config.load(write_yaml(tmp_path / f"c{len(list(tmp_path.glob('c*.yaml')))}.yaml", cfg))


def experiment(tmp_path, n=30, voted_share=0.3, name="exp"):
    return write_info(tmp_path / name, make_problems(n, seed=1, voted_share=voted_share))


def run_adaptive(cfg, teacher=None, rank=0, world=1, run="run"):
    teacher = teacher or SimulatedTeacher(concurrency=16)
    return Adaptive(cfg, generator=teacher).run(rank, world, run), teacher


def records(folder, pattern="*_*.jsonl"):
    out = {}
    for path in sorted(Path(folder).glob(pattern)):
        if path.name.startswith(("answer_stats", "problems")):
            continue
        for line in path.read_text().splitlines():
            rec = json.loads(line)
            assert rec["index"] not in out, f"{rec['index']} twice"
            out[rec["index"]] = rec
    return out


# ---- the rules -----------------------------------------------------------------------------------------------
def test_rounds_end_at_first_round_then_every_round_size_up_to_max_answers():
    drawn = (0, 1, 4, 5, 10, 11, 16, 17, 20, 25)
    assert [round_end(n, 4, 6, 20) for n in drawn] == [4, 4, 4, 10, 10, 16, 16, 20, 20, 20]
    assert round_end(0, 32, 8, 32) == 32  # first_round == max_answers: the seed's fixed sampling, one round


@pytest.mark.parametrize("ratio,min_vote", [(0.9, 4), (0.5, 1), (0.75, 3), (1.0, 2), (0.34, 5)])
def test_the_vote_bound_is_exact_against_every_future(ratio, min_vote):
    """vote_can_become_clear(t, v, m) is true exactly when some way of drawing up to m more answers (each joining
    any group, or giving no vote) makes the top group meet the rule: checked by enumeration on small votes."""
    for groups in [(), (1,), (2, 1), (3, 1), (5, 2, 1), (2, 2), (6,), (4, 4, 1), (7, 1, 1, 1)]:
        for m in range(0, 7):
            t, v = (groups[0] if groups else 0), sum(groups)

            def reachable(gs, left):
                gs = sorted(gs, reverse=True)
                if gs and vote_is_clear(gs[0], sum(gs), ratio, min_vote):
                    return True
                if left == 0:
                    return False
                options = [gs[:i] + [gs[i] + 1] + gs[i + 1:] for i in range(len(gs))] + [gs + [1]]
                return any(reachable(o, left - 1) for o in options)

            assert vote_can_become_clear(t, v, m, ratio, min_vote) == reachable(list(groups), m), (groups, m)


def test_the_target_grows_with_the_estimated_failure_rate():
    cfg = config.Config(target_correct=32, min_correct=4)
    # (correct, drawn) -> 32 x (1 - (c + 1/2) / (n + 1)), rounded up, within [4, 32]
    assert problem_target(4, 4, cfg) == 4  # 32 x 0.1 = 3.2 -> 4, the floor: an easy problem closes after a round
    assert problem_target(0, 4, cfg) == 29  # 32 x 0.9 = 28.8
    assert problem_target(1, 8, cfg) == 27  # 32 x 15/18 = 26.7
    assert problem_target(8, 16, cfg) == 16  # 32 x 1/2 exactly: no float rounding up to 17
    assert problem_target(0, 400, cfg) == 32  # never above target_correct
    for n in range(0, 60):  # more correct answers of as many never raise the target
        targets = [problem_target(c, n, cfg) for c in range(n + 1)]
        assert targets == sorted(targets, reverse=True) and all(4 <= t <= 32 for t in targets)
    cfg["min_correct"] = 32  # one flat target
    assert {problem_target(c, n, cfg) for n in range(40) for c in range(n + 1)} == {32}


def test_close_reasons():
    cfg = config.Config(target_correct=4, min_correct=4, max_answers=16, vote_ratio=0.9, min_vote=4)
    assert close_reason(8, 4, cfg) == "target_correct"
    assert close_reason(8, 3, cfg) is None
    assert close_reason(16, 3, cfg) == "max_answers"
    assert close_reason(4, None, cfg, votes=(4, 0, 4)) == "target_correct"  # clear and 4 in the top group
    assert close_reason(4, None, cfg, votes=(3, 1, 4)) is None  # 15/16 is still possible
    # 2 of 4 against the rest: even 12 more in the top group give 14/16 < 0.9
    assert close_reason(4, None, cfg, votes=(2, 2, 4)) == "vote_unreachable"
    assert close_reason(12, None, cfg, votes=(9, 1, 10)) == "target_correct"  # 9/10 meets 0.9
    cfg["target_correct"] = cfg["min_correct"] = 12
    assert close_reason(12, None, cfg, votes=(9, 1, 10)) is None  # clear, too few; 13/14 stays reachable
    assert close_reason(12, None, cfg, votes=(9, 2, 11)) == "vote_unreachable"  # 13/15 < 0.9 at best
    assert close_reason(16, None, cfg, votes=(10, 1, 11)) == "max_answers"  # clear at the end: labelled, not full
    cfg["give_up_after"] = 8
    assert close_reason(4, 0, cfg) is None
    assert close_reason(8, 0, cfg) == "no_correct"
    assert close_reason(8, 1, cfg) is None  # one correct answer: the problem can be solved, keep drawing
    assert close_reason(8, None, cfg, votes=(1, 1, 2)) is None  # a voted problem: its vote rule decides


# ---- the loop --------------------------------------------------------------------------------------------------
def test_records_are_infers_and_problems_close_by_the_rules(tmp_path):
    base = experiment(tmp_path)
    cfg = make_cfg(tmp_path, base)
    final, teacher = run_adaptive(cfg)
    folder = final.parent
    recs = records(folder)
    assert set(next(iter(recs.values()))) == {"info", "index", "model_input", "model_output", "prompt", "answer"}
    rows = {r["index"]: r for r in map(json.loads, (folder / "problems.jsonl").read_text().splitlines())}
    assert len(rows) == 30
    by_problem = {}
    for index, rec in recs.items():
        problem, j = index.rsplit("_", 1)
        by_problem.setdefault(problem, []).append(int(j))
        assert rec["model_output"] == rec["model_input"] + rec["answer"] and rec["info"]["index"] == problem
    for problem, js in by_problem.items():
        row = rows[problem]
        assert sorted(js) == list(range(len(js))), "seeds run on without gaps"
        n = len(js)
        assert n == row["answers"] and (n in (4, 8, 12, 16, 20, 24))  # whole rounds
        if row["closed"] == "max_answers":
            assert n == 24 and row["correct"] < 4
        elif row["closed"] == "target_correct":
            assert row["correct"] >= 4
        else:
            assert row["closed"] == "vote_unreachable" and row["label"] is None
    # Every answer was asked for once, with its own seed.
    assert sum(teacher.calls.values()) == len(recs) and set(teacher.calls.values()) == {1}
    reasons = {r["closed"] for r in rows.values()}
    assert {"target_correct", "max_answers"} <= reasons  # the simulated spread has easy and hopeless problems
    # The stats file holds one line per answer, with the server's token count.
    stats = [json.loads(x) for x in (folder / "answer_stats_0_1.jsonl").read_text().splitlines()]
    assert sorted(e["index"] for e in stats) == sorted(recs) and all(isinstance(e["tokens"], int) for e in stats)
    f = json.loads((folder / "funnel.json").read_text())
    assert f["steps"][0] == {"step": "in", "problems": 30, "answers": len(recs)}
    assert (folder / "funnel.png").stat().st_size > 1000


@pytest.mark.parametrize("target,least,give_up", [(4, 4, None), (16, 2, None), (16, 2, 8)])
def test_a_judged_problem_takes_more_rounds_exactly_while_it_lacks_correct_answers(tmp_path, target, least, give_up):
    """(4, 4): one flat target of 4. (16, 2): the target is 16 x the estimated failure rate, at least 2, restated
    here from the rule's definition rather than by calling the code under test. give_up 8: none correct of 8
    closes the problem."""
    base = experiment(tmp_path, n=40, voted_share=0.0)
    final, _ = run_adaptive(make_cfg(tmp_path, base, target_correct=target, min_correct=least,
                                     give_up_after=give_up))
    recs = records(final.parent)
    rows = list(map(json.loads, (final.parent / "problems.jsonl").read_text().splitlines()))
    for row in rows:
        short = []
        for end in range(4, row["answers"] + 1, 4):
            correct = sum(1 for j in range(end) if _is_correct(recs[f"{row['index']}_{j}"]))
            wanted = min(target, max(least, math.ceil(target * (1 - (correct + 0.5) / (end + 1)) - 1e-9)))
            hopeless = give_up is not None and correct == 0 and end >= give_up
            short.append(correct < wanted and not hopeless)
        # Open after every round but the last (short of its target), closed after the last.
        assert all(short[:-1]), row
        assert not short[-1] or row["answers"] == 24, row
    if least < target:  # the target really moved: easy problems closed below 16 correct, and some at 24 answers
        assert any(r["closed"] == "target_correct" and r["correct"] < 16 for r in rows)
        assert any(r["closed"] == "max_answers" for r in rows)
    closed_hopeless = [r for r in rows if r["closed"] == "no_correct"]
    assert all(r["correct"] == 0 and r["answers"] == 8 for r in closed_hopeless)
    assert bool(closed_hopeless) == (give_up is not None)  # the simulated spread has hopeless problems


def _is_correct(rec):
    return f"\\boxed{{{rec['info']['expected_answer']}}}" in rec["answer"]


def cut_file(path, keep_lines, torn=False):
    lines = path.read_bytes().splitlines(keepends=True)
    data = b"".join(lines[:keep_lines])
    if torn and keep_lines < len(lines):
        data += lines[keep_lines][: len(lines[keep_lines]) // 2]
    path.write_bytes(data)


@pytest.mark.parametrize("cut", [(0.3, 0.5, True), (0.7, 0.2, False), (0.5, 0.9, True), (0.0, 0.0, False)])
def test_a_crash_at_any_point_resumes_to_the_same_records_asking_only_for_what_is_missing(tmp_path, cut):
    """A crash leaves a prefix of the shard's records and a prefix of its stats lines (longer, as they are written
    first, or shorter in the carry-over window), maybe with a torn last line. Cut a finished run that way: the rerun
    must ask the teacher only for the answers not on disk and end with the uninterrupted run's records."""
    base = experiment(tmp_path)
    final, _ = run_adaptive(make_cfg(tmp_path, base), run="reference")
    reference = records(final.parent)

    crashed = tmp_path / "exp" / "answer_origin" / "crashed"
    crashed.mkdir()
    shutil.copy(final, crashed / "0_1.jsonl.part")
    shutil.copy(final.parent / "answer_stats_0_1.jsonl", crashed / "answer_stats_0_1.jsonl")
    n = len(reference)
    cut_file(crashed / "0_1.jsonl.part", int(n * cut[0]), torn=cut[2])
    cut_file(crashed / "answer_stats_0_1.jsonl", int(n * cut[1]), torn=cut[2])
    on_disk = {json.loads(x)["index"] for x in (crashed / "0_1.jsonl.part").read_bytes().split(b"\n")[:-1]}
    shutil.rmtree(final.parent)  # the reference must not be carried over

    final2, teacher = run_adaptive(make_cfg(tmp_path, base), run="crashed")
    again = records(final2.parent)
    assert again == reference
    asked = {f"sim:{m.split('Problem ')[1].split(':')[0]}_{j}" for (m, j) in teacher.calls}
    assert len(asked) == sum(teacher.calls.values()) == n - len(on_disk)
    assert not asked & on_disk
    stats = [json.loads(x)["index"] for x in (final2.parent / "answer_stats_0_1.jsonl").read_text().splitlines()]
    assert sorted(stats) == sorted(reference)  # exactly one line per answer again


def test_a_fixed_run_is_carried_over_and_only_the_rounds_it_lacks_are_drawn(tmp_path):
    base = experiment(tmp_path, n=12, voted_share=0.0)
    teacher = SimulatedTeacher()
    fixed = base / "answer_origin" / "fixed"
    fixed.mkdir(parents=True)
    with open(fixed / "0_1.jsonl", "w") as f:  # what `-m infer` with num_answer 8 writes (no stats file)
        from reasonlite.prompts import HARMONY_TEMPLATE, infer_prompt
        for info in map(json.loads, (base / "info.jsonl").read_text().splitlines()):
            model_input = HARMONY_TEMPLATE.format(reasoning_level="medium", prompt=infer_prompt(info["prompt"]))
            for j in range(8):
                answer = teacher.answer(model_input, j)[0]
                f.write(json.dumps({"info": info, "index": f"{info['index']}_{j}", "model_input": model_input,
                                    "model_output": model_input + answer, "prompt": info["prompt"],
                                    "answer": answer}) + "\n")
    final, teacher = run_adaptive(make_cfg(tmp_path, base), run="adaptive")
    assert all(j >= 8 for (_, j) in teacher.calls), "the 8 answers of the fixed run are not asked for again"
    recs = records(final.parent)
    assert all(f"{i['index']}_{j}" in recs for i in make_problems(12, seed=1) for j in range(8))
    stats = [json.loads(x) for x in (final.parent / "answer_stats_0_1.jsonl").read_text().splitlines()]
    carried = [e for e in stats if int(e["index"].rsplit("_", 1)[1]) < 8]
    assert len(carried) == 96 and all(e["tokens"] is None for e in carried)  # labelled again, tokens unknown


def test_shards_own_whole_problems_and_together_make_the_unsharded_run(tmp_path):
    base = experiment(tmp_path)
    whole = records(run_adaptive(make_cfg(tmp_path, base), run="one")[0].parent)
    for rank in range(3):
        run_adaptive(make_cfg(tmp_path, base), rank=rank, world=3, run="three")
    folder = base / "answer_origin" / "three"
    assert records(folder) == whole
    for rank in range(3):
        problems = {i.rsplit("_", 1)[0] for i in records(folder, f"{rank}_3.jsonl")}
        assert all(json.loads(line)["index"] in problems
                   for line in (folder / f"problems_{rank}_3.jsonl").read_text().splitlines())
        assert all(int(__import__("zlib").crc32(p.encode()) % 3) == rank for p in problems)


def test_labels_and_the_conversion_read_an_adaptive_run_unchanged(tmp_path, capsys):
    from reasonlite import modes, problem_stats, training_data
    base = experiment(tmp_path, voted_share=0.0)
    cfg = make_cfg(tmp_path, base)
    run_adaptive(cfg)
    final = modes.run(cfg, "judge", save_name="j")
    rows = {r["index"]: r for r in problem_stats.read_rows(final.parent)}
    adaptive = {r["index"]: r for r in problem_stats.read_rows(base / "answer_origin" / "run")}
    assert {k: (r["correct"], r["answers"]) for k, r in rows.items()} == \
           {k: (r["correct"], r["answers"]) for k, r in adaptive.items()}
    assert all(r["mean_answer_tokens"] == adaptive[k]["mean_answer_tokens"] for k, r in rows.items())
    training_data.main(["-d", str(final.parent), "--max-per-problem", "2"])
    out = capsys.readouterr().out
    written = sum(min(2, r["correct"]) for r in rows.values())
    assert f"[kept data]: {written}" in out


def test_one_answer_indices_are_refused_and_config_keys_checked(tmp_path):
    base = write_info(tmp_path / "exp", [("p:0_3", "Problem 0: what is 1 + 2?", "3")])
    with pytest.raises(ValueError, match="names one answer"):
        run_adaptive(make_cfg(tmp_path, base))
    with pytest.raises(config.ConfigError, match="max_answers' must be at least first_round"):
        make_cfg(tmp_path, base, first_round=8, max_answers=4)
    with pytest.raises(config.ConfigError, match="'round_size' must be at least 1"):
        make_cfg(tmp_path, base, round_size=0)


# ---- the command, killed (slow: a server process and infer.py runs) --------------------------------------------
class TeacherServer:
    """bench/stub_teacher.py served over HTTP (the simulated teacher, not a model), logging every answer asked for."""

    def __init__(self, tmp_path, delay, name):
        self.port, self.log = free_port(), tmp_path / f"{name}.log"
        self.proc = subprocess.Popen([sys.executable, "bench/stub_teacher.py", "--port", str(self.port), "--delay",
                                      str(delay), "--log", str(self.log)], cwd=ROOT,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_health(f"http://127.0.0.1:{self.port}")

    def asked(self):
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        return [f"sim:{r['problem']}_{r['seed']}" for r in map(json.loads, lines)]

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)


def served_cfg(tmp_path, base, port):
    cfg = {"model_path": "stub/gpt-oss-sim", "prompt_format": "harmony", "device": "cpu", "gpu_index": [0],
           "port_base": port, "base_data_path": str(base), "sampling": "adaptive", "judge_backend": "rule",
           "max_tokens": 30000, "max_inflight_per_server": 4, "server_start_timeout": 30, "retry_backoff": 0.05,
           "flush_every": 1, **SETTINGS}
    return write_yaml(tmp_path / f"served{len(list(tmp_path.glob('served*.yaml')))}.yaml", cfg)


def whole_lines(path):
    return [json.loads(x) for x in path.read_bytes().split(b"\n")[:-1]] if path.exists() else []


def wait_for(part, n, proc, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(whole_lines(part)) >= n:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError(f"{part}: fewer than {n} records after {timeout} s")


def reference_records(tmp_path):
    ref = experiment(tmp_path, n=12, voted_share=0.25, name="ref")
    return {i: (r["answer"], r["model_output"]) for i, r in
            records(run_adaptive(make_cfg(tmp_path, ref))[0].parent).items()}


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_mid_round_it_resumes_with_every_answer_once_and_none_asked_again(tmp_path, sig):
    base = experiment(tmp_path, n=12, voted_share=0.25)
    part = base / "answer_origin" / "run" / "0_1.jsonl.part"
    first = TeacherServer(tmp_path, delay=0.25, name="first")
    try:
        proc = subprocess.Popen([sys.executable, "infer.py", "-c", str(served_cfg(tmp_path, base, first.port)),
                                 "-m", "infer", "-s", "run"], cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        wait_for(part, 40, proc)  # first rounds done, later rounds in flight
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        first.stop()
    on_disk = [r["index"] for r in whole_lines(part)]
    assert len(on_disk) == len(set(on_disk)) >= 40
    if sig == signal.SIGTERM:
        assert proc.returncode == STOPPED_EXIT, err
        assert err.strip().splitlines()[-1].startswith("stopped by SIGTERM: ") and "still open" in err
        # Graceful: the answers in flight at the signal were waited for and saved; nothing asked is lost.
        assert sorted(first.asked()) == sorted(on_disk)
    else:
        assert proc.returncode == -signal.SIGKILL
    second = TeacherServer(tmp_path, delay=0.0, name="second")
    try:
        done = run_script("infer.py", "-c", served_cfg(tmp_path, base, second.port), "-m", "infer", "-s", "run")
    finally:
        second.stop()
    assert done.returncode == 0, done.stderr
    asked_again = second.asked()
    assert not set(asked_again) & set(on_disk), "an answer on disk was asked for again"
    assert len(asked_again) == len(set(asked_again))
    final = records(base / "answer_origin" / "run")
    assert sorted(final) == sorted(on_disk + asked_again)
    assert {i: (r["answer"], r["model_output"]) for i, r in final.items()} == reference_records(tmp_path)
    assert (base / "answer_origin" / "run" / "problems.jsonl").exists()


def test_adaptive_sampling_against_the_real_vllm_server(make_config, tmp_path):
    """The served path (infer's LLM.generate: echo, seed j, the server's usage and finish_reason) on the tiny model."""
    from conftest import PROBLEMS
    base = write_info(tmp_path / "exp", PROBLEMS)
    cfg = make_config(sampling="adaptive", first_round=2, round_size=2, target_correct=2, min_correct=2, max_answers=6,
                      judge_backend="rule", max_tokens=16)
    proc = run_script("infer.py", "-c", cfg, "-m", "infer", "-s", "a", timeout=300)
    assert proc.returncode == 0, proc.stderr
    folder = base / "answer_origin" / "a"
    recs = records(folder)
    stats = {e["index"]: e for e in map(json.loads, (folder / "answer_stats_0_1.jsonl").read_text().splitlines())}
    assert sorted(stats) == sorted(recs)
    assert all(1 <= e["tokens"] <= 16 and e["finish"] in ("stop", "length") for e in stats.values())
    rows = {r["index"]: r for r in map(json.loads, (folder / "problems.jsonl").read_text().splitlines())}
    for index, row in rows.items():
        js = sorted(int(i.rsplit("_", 1)[1]) for i in recs if i.rsplit("_", 1)[0] == index)
        assert js == list(range(row["answers"])) and row["answers"] in (2, 4, 6)
        assert row["closed"] == ("target_correct" if row["correct"] >= 2 else "max_answers")
    again = run_script("infer.py", "-c", cfg, "-m", "infer", "-s", "a", timeout=300)
    assert again.returncode == 0 and ", 0 new, 0 unfinished" in again.stderr, again.stderr
    assert records(folder) == recs


def test_bench_share_reads_a_real_runs_problem_lines(tmp_path):
    # The number that says which simulated length model a real teacher is nearest: the hardest quartile's share of a
    # fixed run's answer length. 2 of 8 problems (the lowest pass rates) with answers 4x as long: 2*4 / (2*4 + 6).
    rows = [{"index": f"p:{k}", "answers": 32, "pass_rate": k / 8, "mean_answer_tokens": None,
             "mean_answer_chars": 4000 if k < 2 else 1000} for k in range(8)]
    (tmp_path / "problems.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = run_script("bench/adaptive_sampling.py", "--share", tmp_path, check=True).stdout
    assert "8 problems" in out and "drew 25% of the answers and 57% of the answer length" in out, out
    assert "could grow by 1.75x at most" in out, out
    rows[0]["answers"] = 48  # an adaptive run: its share says nothing about what could move
    (tmp_path / "problems.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert "read a fixed run's share instead" in run_script("bench/adaptive_sampling.py", "--share", tmp_path,
                                                            check=True).stdout
    (tmp_path / "problems.jsonl").write_text("")
    bad = run_script("bench/adaptive_sampling.py", "--share", tmp_path)
    assert bad.returncode != 0 and "no problems*.jsonl lines with a pass rate" in bad.stderr


def test_bench_from_run_simulates_a_real_runs_own_problems(tmp_path):
    # Each simulated problem takes one real problem's pass rate and length: the fixed run's correct answers per
    # hardest-quartile problem must come out near what the run measured there, and the table says whose data it is.
    rows = [{"index": f"q:{k}", "answers": 32, "failed": 0, "undecided": 0, "pass_rate": (k % 8) / 8,
             "mean_answer_tokens": None, "mean_answer_chars": 8000 + 1000 * (8 - k % 8)} for k in range(40)]
    rows.append({"index": "q:skip", "answers": 32, "failed": 32, "undecided": 0, "pass_rate": None,
                 "mean_answer_chars": None})
    (tmp_path / "problems.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = run_script("bench/adaptive_sampling.py", "--from-run", tmp_path, "--fixed", 32, "--policies", "2:16",
                     "--max-search", 64, "--out", tmp_path / "report.md", check=True).stdout
    assert "a real run's measured pass rates and answer lengths" in out
    report = (tmp_path / "report.md").read_text()
    assert f"40 problems of {tmp_path}" in report and "hardest quartile (10)" in report, report
    fixed_hard = float(next(line for line in report.splitlines() if line.startswith("| correct per problem"))
                       .split("|")[2].split()[0])
    # The hardest quartile holds the 10 problems at pass rate 0 and 1/8 (5 each): 32 x (0.016 + 0.136) / 2 = 2.4.
    assert 1.2 < fixed_hard < 3.6, fixed_hard
    (tmp_path / "problems.jsonl").write_text(json.dumps(rows[-1]) + "\n")
    bad = run_script("bench/adaptive_sampling.py", "--from-run", tmp_path)
    assert bad.returncode != 0 and "fewer than 4 problems" in bad.stderr

"""report.py on small task folders built here: the seed's table, --ci, --truncation, --diff, --audit; show.py's
truncation counts; and one end-to-end run of eval.py and report.py as users run them."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

from reasonlite import show as show_mod
from reasonlite.answers import extract_answer
from reasonlite.evaluation import report
from reasonlite.evaluation.metrics import format_result_log, ks_for, problem_metrics, summarize
from reasonlite.evaluation.stats import Bootstrap, Outcomes
from reasonlite.manifest import write_manifest

PROBLEMS = [(0, "What is 2 + 3?", "5"), (1, "What is 4 * 6?", "24"), (2, "Compute 9 - 2.", "7"),
            (3, "What is 10 / 2?", "5")]


def make_task(folder, outcomes, *, seed=42, problems=PROBLEMS, cut=(), manifest=True, model="org/tiny-model",
              dataset="quirks"):
    """A finished task folder as eval.py writes it. outcomes: per problem, a string of n sample kinds: `c` a correct
    boxed answer, `w` a wrong one, `x` no answer; `cut` lists (problem, sample) pairs cut at max_tokens."""
    folder = Path(folder)
    folder.mkdir(parents=True)
    n = len(outcomes[0])
    config = {"base_model": model, "data_id": None, "data_dir": f"data/{dataset}.jsonl", "problem_key": None,
              "answer_key": None, "n": n, "seed": seed, "temperature": 0.6, "top_p": 0.95, "max_tokens": 64,
              "max_model_len": 1024, "output_dir": str(folder), "split": None, "start_idx": None, "end_idx": None}
    records = []
    for (idx, text, gold), kinds in zip(problems, outcomes):
        responses = [{"c": f"so \\boxed{{{gold}}}", "w": f"\\boxed{{{int(gold) + 1 + i % 2}}}", "x": "no box"}[k]
                     for i, k in enumerate(kinds)]
        finish = ["length" if (idx, i) in cut else "stop" for i in range(n)]
        preds = [extract_answer(r) for r in responses]
        correct = [k == "c" and (idx, i) not in cut for i, k in enumerate(kinds)]
        rec = {"problem": text, "answer": gold, "idx": idx, "prompt": f"<user>{text}</user>", "prompt_length": 9,
               "gold": gold, "response": responses, "response_length": [10 + 20 * i if f == "stop" else 64
                                                                       for i, f in enumerate(finish)],
               "finish_reason": finish, "sample_seed": [seed + i for i in range(n)], "pred": preds,
               "correct": correct}
        rec.update(problem_metrics(preds, correct))
        records.append(rec)
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "generation.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    summary = summarize(records, n)
    (folder / "result.log").write_text(format_result_log(summary, n))
    stats = {"samples": n * len(records), "no_answer": sum(p is None for r in records for p in r["pred"]),
             "truncated": len(cut)}
    (folder / "metrics.json").write_text(json.dumps({"base_model": model, "dataset": dataset, "n": n, "ks": ks_for(n),
                                                     "num_problems": len(records), **summary, "stats": stats}))
    if manifest:
        write_manifest(folder, config, problems=[p[:3] for p in problems], dataset={"name": dataset})
    return folder


def run_report(capsys, *args):
    """report.main in this process: (exit code, stdout, stderr)."""
    code = 0
    try:
        report.main([str(a) for a in args])
    except SystemExit as e:
        code = e.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def table(stdout):
    lines = [line for line in stdout.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    return header, [dict(zip(header, [c.strip() for c in line.strip("|").split("|")])) for line in lines[2:]]


A = ["cccw", "wwww", "cwww", "cccc"]  # problem 2: 1 of 4 correct
B = ["cccw", "wwww", "ccwc", "cccc"]  # problem 2: 3 of 4 correct: it flips to solved


def test_default_table_keeps_the_seed_layout(tmp_path, capsys):
    run = tmp_path / "run"
    make_task(run / "tiny_quirks", A)
    code, out, err = run_report(capsys, run)
    assert code == 0, err
    header, rows = table(out)
    assert header == ["Model", "AMC23 avg@16", "AMC23 pass@8", "AIME25 avg@16", "AIME25 pass@8", "AIME24 avg@16",
                      "AIME24 pass@8", "quirks avg@4", "quirks pass@2"]
    assert rows == [{**{h: "-" for h in header}, "Model": "tiny-model", "quirks avg@4": "50.0",
                     "quirks pass@2": "62.5"}]
    assert "±" not in out and "warning" not in out
    for png in ("pass_at_k.png", "response_lengths.png"):
        assert (run / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_ci_cells_carry_the_bootstrap_standard_error(tmp_path, capsys):
    task = make_task(tmp_path / "run" / "t", A)
    code, out, err = run_report(capsys, tmp_path / "run", "--ci", "--resamples", 500, "--seed", 3)
    assert code == 0, err
    records = [json.loads(line) for line in (task / "generation.jsonl").read_text().splitlines()]
    est = Bootstrap(500, 3).estimate(Outcomes.from_records(records), ["pass@1", "pass@2", "maj@4"])
    _, [row] = table(out)
    assert row["quirks avg@4"] == f"50.0 ± {est['pass@1'].se * 100:.1f}"
    assert row["quirks pass@2"] == f"62.5 ± {est['pass@2'].se * 100:.1f}"
    assert "500 resamples, seed 3" in out and "problems, and the samples within each drawn problem" in out
    e = est["maj@4"]
    assert f"maj@4 {e.point * 100:.1f} ± {e.se * 100:.1f} [{e.lo * 100:.1f}, {e.hi * 100:.1f}]" in out
    assert "not grader errors" in out


def test_truncation_columns_and_warning(tmp_path, capsys):
    run = tmp_path / "run"
    make_task(run / "t", A, cut=[(0, 0), (3, 1)])  # two of 16 samples cut: 12.5%
    code, out, err = run_report(capsys, run, "--truncation")
    assert code == 0, err
    _, [row] = table(out)
    # 14 finished samples, 6 of them correct (problem 0 lost a correct one to the cut, problem 3 too)
    assert row["quirks cut"] == "12.5%" and row["quirks avg@4 finished"] == f"{600 / 14:.1f}"
    assert row["quirks avg@4"] == "37.5"
    [warning] = [line for line in out.splitlines() if line.startswith("warning:")]
    assert "2 of 16 samples (12%) were cut at max_tokens (64), more than 10%" in warning
    code, out, _ = run_report(capsys, run, "--max-truncated", 0.2)
    assert code == 0 and "warning" not in out and "cut" not in table(out)[0][-1]


def test_diff_of_two_runs_where_one_problem_flips(tmp_path, capsys):
    a, b = make_task(tmp_path / "a" / "t", A), make_task(tmp_path / "b" / "t", B, seed=7)
    code, out, err = run_report(capsys, "--diff", tmp_path / "a", tmp_path / "b", "--resamples", 800)
    assert code == 0, err
    lines = out.splitlines()
    first_table = next(i for i, line in enumerate(lines) if line.startswith("|"))
    differs = lines[lines.index("What differs (manifest.json, A -> B):") + 1:first_table]
    assert "  sampling.seed: 42 -> 7" in differs and not any("config.seed" in line for line in differs)
    header, rows = table(out)
    assert header == ["metric", "A", "B", "B - A", "95% interval", "B > A in"]
    rows = {r["metric"]: r for r in rows}
    d = Bootstrap(800).paired(*(Outcomes.from_records(json.loads(x) for x in (t / "generation.jsonl").read_text()
                                                      .splitlines()) for t in (a, b)), ["pass@1"])["pass@1"]
    assert rows["avg@4"]["A"] == "50.0" and rows["avg@4"]["B"] == "62.5" and rows["avg@4"]["B - A"] == "+12.5"
    assert rows["avg@4"]["95% interval"] == f"[{report._signed(d.lo)}, {report._signed(d.hi)}]"
    assert rows["avg@4"]["B > A in"] == f"{d.b_better:.0%}" and d.b_better > 0.5
    assert set(rows) == {"avg@4", "pass@2", "maj@1", "maj@2", "maj@4"}
    assert "flipped: 1 of 4 problems (solved = more than half of its samples correct; correct A -> B)" in lines
    assert "  solved by B only: 2 (1/4 -> 3/4)" in lines and "  solved by A only: none" in lines
    assert (tmp_path / "b" / "diff_vs_a.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("change", ["gold", "fewer", "text"])
def test_diff_refuses_runs_with_different_problems(tmp_path, capsys, change):
    problems = {"gold": [p if p[0] != 1 else (1, p[1], "25") for p in PROBLEMS], "fewer": PROBLEMS[:3],
                "text": [p if p[0] != 3 else (3, "What is 12 / 2?", "5") for p in PROBLEMS]}[change]
    make_task(tmp_path / "a" / "t", A)
    make_task(tmp_path / "b" / "t", B[:len(problems)], problems=problems)
    code, out, err = run_report(capsys, "--diff", tmp_path / "a", tmp_path / "b")
    assert code == 1 and out == ""
    [line] = err.splitlines()
    assert line.startswith("error: quirks: A (") and "hold different problems" in line, line


def test_diff_without_manifests_compares_configs(tmp_path, capsys):
    make_task(tmp_path / "a" / "t", A, manifest=False)
    make_task(tmp_path / "b" / "t", B, seed=7)
    code, out, err = run_report(capsys, "--diff", tmp_path / "a" / "t", tmp_path / "b" / "t", "--resamples", 100)
    assert code == 0, err
    assert "quirks: no manifest.json in A (made before manifests); config.json compared instead" in out
    assert "  config.seed: 42 -> 7" in out and "sampling.seed" not in out


def test_diff_refuses_a_run_with_two_tasks_on_one_dataset(tmp_path, capsys):
    make_task(tmp_path / "a" / "t1", A)
    make_task(tmp_path / "a" / "t2", A, model="org/other")
    make_task(tmp_path / "b" / "t", B)
    code, _, err = run_report(capsys, "--diff", tmp_path / "a", tmp_path / "b")
    assert code == 1 and "holds 2 tasks on quirks (t1, t2); pass the two task folders" in err


def test_one_mode_at_a_time(tmp_path, capsys):
    make_task(tmp_path / "a" / "t", A)
    code, _, err = run_report(capsys, tmp_path / "a", "--audit", tmp_path / "a")
    assert code == 1 and "give one of" in err


def test_show_counts_answers_cut_before_their_final_answer(tmp_path):
    final = "<|channel|>analysis<|message|>think<|end|><|start|>assistant<|channel|>final<|message|>\\boxed{5}"
    cut = "<|channel|>analysis<|message|>still thinking when the limit came"
    in_box = "<think>\nsteps\n</think>\n\nThe answer is $\\boxed{\\frac{8}{3}"  # cut inside its final answer
    answers = [final, cut, in_box, None, final]
    folder = tmp_path / "exp" / "answer_origin" / "20250101_000000"
    folder.mkdir(parents=True)
    (folder / "0_1.jsonl").write_text("".join(json.dumps({"index": f"p:0_{i}", "answer": a}) + "\n"
                                              for i, a in enumerate(answers)))
    lines = []
    show_mod.show(tmp_path / "exp", out=lines.append)
    assert "    truncation: 2 of 4 answers (50%) cut before the final answer" in lines
    assert any(line.startswith("warning: answer_origin: 50% of the answers were cut") for line in lines)
    lines = []
    show_mod.show(tmp_path / "exp", out=lines.append, max_truncated=0.6)
    assert not any(line.startswith("warning") for line in lines)
    # judge stages: finish_reason where recorded wins over the text, and judged-true among finished answers
    judged = tmp_path / "exp" / "answer_judge" / "20250101_000001"
    judged.mkdir(parents=True)
    recs = [{"index": "p:0_0", "answer": final, "judge": True}, {"index": "p:0_1", "answer": final, "judge": False},
            {"index": "p:0_2", "answer": final, "judge": False, "finish_reason": "length"}]
    (judged / "0_1.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    lines = []
    show_mod.show(tmp_path / "exp", out=lines.append)
    assert ("    truncation: 1 of 3 answers (33%) cut before the final answer; judged true among finished answers: "
            "1 of 2 (50%)") in lines


# ---- the audit: both graders for real, in their worker processes ----------------------------------------------------
def test_audit_lists_disagreements_both_ways(tmp_path, capsys):
    task = make_task(tmp_path / "run" / "t", ["cc"], problems=[(0, "Write 1234567.", "1234567")])
    rec = json.loads((task / "generation.jsonl").read_text())
    # tests/grader_cases.jsonl: a thin-space thousands separator (ours right, math-verify alone wrong) and a box
    # inside unfinished thinking (math-verify alone takes it; ours reads no final answer)
    rec["response"] = ["So the number is \\boxed{1\\,234\\,567}.",
                       "<think>\nIt is 1234567, so \\boxed{1234567}. But wait, let me reconsider whether"]
    rec["correct"] = [True, False]
    (task / "generation.jsonl").write_text(json.dumps(rec) + "\n")
    code, out, err = run_report(capsys, "--audit", tmp_path / "run", "--workers", 1)
    assert code == 0, err
    assert "  avg@2: 50.0 by our grader, 50.0 by math-verify alone" in out
    assert "  ours correct, math-verify alone wrong: 1" in out
    assert "  math-verify alone correct, ours wrong: 1" in out
    assert "  agree: 0 of 2 decided by both (0 correct, 0 wrong)" in out
    assert "  verdicts in generation.jsonl that today's grader changes: 0" in out
    assert 'problem 0 sample 0: gold "1234567", ours read "1\\\\,234\\\\,567"' in out
    assert 'problem 0 sample 1: gold "1234567", ours read null, math-verify read "' in out


# ---- end to end: eval.py scores two runs, report.py compares them, as users run them -------------------------------
@pytest.mark.slow
def test_eval_then_report_end_to_end(tiny_model, tmp_path):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(tiny_model)
    data = tmp_path / "quirks.jsonl"
    data.write_text("".join(json.dumps({"problem": t, "answer": g}) + "\n" for _, t, g in PROBLEMS))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    for name, seed, kinds in (("a", 42, A), ("b", 7, B)):
        out = tmp_path / "result" / name / "task"
        out.mkdir(parents=True)
        with open(out / "generation.jsonl", "w") as f:  # every sample already generated: eval.py only scores
            for (idx, text, gold), ks in zip(PROBLEMS, kinds):
                prompt = tok.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                                 add_generation_prompt=True)
                for i, k in enumerate(ks):
                    f.write(json.dumps({"idx": idx, "sample": i, "seed": seed + i, "prompt": prompt,
                                        "response": f"\\boxed{{{gold if k == 'c' else '0'}}}", "response_length": 5,
                                        "finish_reason": "length" if (idx, i) == (1, 3) else "stop"}) + "\n")
        proc = subprocess.run([sys.executable, "eval.py", "--base_model", str(tiny_model), "--data_dir", str(data),
                               "--output_dir", str(out), "--n", "4", "--seed", str(seed)], cwd=ROOT / "eval",
                              capture_output=True, text=True, timeout=300, env=env)
        assert proc.returncode == 0, proc.stderr
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["sampling"]["seed"] == seed and manifest["dataset"]["num_problems"] == 4
        assert manifest["model"]["files_hash"] and "config.json" in manifest["model"]["hashed_files"]

    def report_cli(*args):
        proc = subprocess.run([sys.executable, "report.py", *map(str, args)], cwd=ROOT / "eval", capture_output=True,
                              text=True, timeout=300, env=env)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    out = report_cli(tmp_path / "result" / "a", "--ci", "--truncation")
    _, [row] = table(out)
    assert row["quirks avg@4"].startswith("50.0 ± ") and row["quirks cut"] == "6.2%"
    out = report_cli("--diff", tmp_path / "result" / "a", tmp_path / "result" / "b")
    assert "  sampling.seed: 42 -> 7" in out and "  solved by B only: 2 (1/4 -> 3/4)" in out
    assert (tmp_path / "result" / "b" / "diff_vs_a.png").is_file()
    print(out)  # the README's example comes from this output

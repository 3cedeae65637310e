"""The funnel report (reasonlite/funnel.py): which step a problem leaves at, shards adding up, the table, show."""
import json

from reasonlite import funnel, problem_stats


def rows():
    # Answers by kind; a problem leaves at the step that drops its last answer.
    return [{"index": "a", "answers": 4, "failed": 1, "cut": 3, "undecided": 0, "wrong": 0, "correct": 0,
             "pass_rate": None},
            {"index": "b", "answers": 5, "failed": 0, "cut": 1, "undecided": 1, "wrong": 3, "correct": 0,
             "pass_rate": 0.0},
            {"index": "c", "answers": 6, "failed": 0, "cut": 0, "undecided": 0, "wrong": 2, "correct": 4,
             "pass_rate": 0.6667, "closed": "target_correct"},
            {"index": "d", "answers": 0, "failed": 0, "cut": 0, "undecided": 0, "wrong": 0, "correct": 0,
             "pass_rate": None}]


def build(folder, stage="answer_judge"):
    b = funnel.Builder(stage, folder)
    for r in rows():
        b.add(r)
    lengths = problem_stats.Lengths("tokens")
    lengths.add("correct", 1000)
    lengths.add("cut", 30000)
    return b.finish(lengths)


def test_each_problem_leaves_at_one_step_and_the_counts_add_up(tmp_path):
    f = build(tmp_path / "answer_judge" / "r")
    steps = [(s["step"], s["problems"], s["answers"]) for s in f["steps"]]
    assert steps == [("in", 4, 15), ("no answers at all", -1, 0), ("request failed (no text)", 0, -1),
                     ("cut by the length limit", -1, -4), ("judge undecided (null)", 0, -1),
                     ("judged false", -1, -5), ("correct", 1, 4)]
    assert f["pass_rate"]["none"] == 2 and f["pass_rate"]["counts"][0] == 1 and f["pass_rate"]["counts"][13] == 1
    assert f["notes"] == {"closed: target_correct": 1}
    assert f["lengths"]["truncated"][int(__import__("math").log2(30000) * 4) - 16] == 1


def test_shards_merge_and_show_prints_each_stage(tmp_path):
    base = tmp_path / "exp"
    folder = base / "answer_origin" / "run"
    folder.mkdir(parents=True)
    for r in (0, 1):
        (folder / f"{r}_2.jsonl").write_text("")
        funnel.save(build(folder, "answer_origin"), folder, f"_{r}_2")
    merged = funnel.load(folder)
    assert merged["steps"][0] == {"step": "in", "problems": 8, "answers": 30}
    assert merged["steps"][-1] == {"step": "correct", "problems": 2, "answers": 8}
    assert merged["lengths"]["correct"] == [2 * x for x in build(folder)["lengths"]["correct"]]
    assert (folder / "funnel_0_2.png").exists() and (folder / "funnel_1_2.json").exists()
    lines = []
    assert funnel.show(base, out=lines.append) == 1
    assert lines[0].startswith("funnel of answer_origin/run") and lines[0].endswith("problems     answers")
    assert ["=", "correct", "2", "8"] in [line.split() for line in lines]
    assert "  closed: target_correct 2" in lines
    assert "wrong (judged false, or outside a clear vote)" in "\n".join(lines)


def test_the_command_says_when_there_is_nothing(tmp_path, capsys):
    funnel.main([str(tmp_path)])
    assert "no funnel written yet" in capsys.readouterr().out
    f = build(tmp_path / "format_data")
    (tmp_path / "format_data").mkdir()
    funnel.save(f, tmp_path / "format_data")
    funnel.main([str(tmp_path)])
    out = capsys.readouterr().out
    assert "funnel of " in out and "plot: " in out
    assert json.loads((tmp_path / "format_data" / "funnel.json").read_text())["plot"].endswith("funnel.png")


def test_utils_show_prints_the_funnels_as_a_user_runs_it(tmp_path):
    from conftest import run_script
    folder = tmp_path / "exp" / "answer_judge" / "run"
    folder.mkdir(parents=True)
    (folder / "0_1.jsonl").write_text("")
    funnel.save(build(folder), folder, "_0_1")
    for how in (["-m", "utils.show"], ["utils/show.py"]):
        proc = run_script(*how, tmp_path / "exp", check=True)
        assert "funnel of answer_judge/run" in proc.stdout, (how, proc.stdout, proc.stderr)
    bad = run_script("-m", "utils.show", tmp_path / "missing")
    assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr

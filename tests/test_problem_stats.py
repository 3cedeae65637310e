"""problems.jsonl and the funnel of the label stages (vote, judge, judge_vote), run in-process on hand-made answers.

The answers are gpt-oss harmony texts written here, so every count below is known in advance: p:0 answered right
four times, p:1 twice right and twice cut off while reasoning, p:2 once failed and three times wrong.
"""
import json
from pathlib import Path

from conftest import write_yaml

from reasonlite import config, modes, problem_stats
from reasonlite.prompts import HARMONY_TEMPLATE, infer_prompt

PROBLEMS = {"p:0": ("What is 3 + 4?", "7", ["7", "7", "7", "7"]),
            "p:1": ("What is 6 + 4?", "10", ["10", "10", None, None]),  # None: cut while reasoning
            "p:2": ("What is 1 + 2?", "3", ["4", "4", "5", "failed"])}


def answer_text(value):
    if value is None:
        return "<|channel|>analysis<|message|>Let me think about this for a long"
    return (f"<|channel|>analysis<|message|>Adding.<|end|><|start|>assistant<|channel|>final<|message|>"
            f"The answer is \\boxed{{{value}}}.")


def write_origin(base, world=1):
    folder = Path(base) / "answer_origin" / "20250101_000000"
    folder.mkdir(parents=True)
    from reasonlite.jsonl import shard_of
    files = [open(folder / f"{r}_{world}.jsonl", "w") for r in range(world)]
    for index, (prompt, expected, values) in PROBLEMS.items():
        info = {"prompt": prompt, "expected_answer": expected, "index": index}
        model_input = HARMONY_TEMPLATE.format(reasoning_level="medium", prompt=infer_prompt(prompt))
        for j, value in enumerate(values):
            text = None if value == "failed" else answer_text(value)
            rec = {"info": info, "index": f"{index}_{j}", "model_input": model_input,
                   "model_output": None if text is None else model_input + text, "prompt": prompt, "answer": text}
            files[shard_of(rec["index"], world)].write(json.dumps(rec) + "\n")
    for f in files:
        f.close()
    return folder


def cfg_for(tmp_path):
    return config.load(write_yaml(tmp_path / "c.yaml", {
        "model_path": "stub/gpt-oss-stub", "prompt_format": "harmony", "base_data_path": str(tmp_path / "exp"),
        "judge_backend": "rule", "vote_ratio": 0.9, "min_vote": 4}))


def rows_of(folder):
    return {r["index"]: r for r in problem_stats.read_rows(folder)}


def steps_of(folder):
    return [(s["step"], s["problems"], s["answers"]) for s in json.loads((folder / "funnel.json").read_text())["steps"]]


def test_judge_writes_one_line_per_problem_and_its_funnel(tmp_path):
    write_origin(tmp_path / "exp")
    final = modes.run(cfg_for(tmp_path), "judge", save_name="j")
    rows = rows_of(final.parent)
    keys = ("answers", "failed", "cut", "undecided", "wrong", "correct", "pass_rate", "truncated", "label",
            "mean_answer_tokens")

    def pick(row):
        return {k: row[k] for k in keys}
    assert pick(rows["p:0"]) == {"answers": 4, "failed": 0, "cut": 0, "undecided": 0, "wrong": 0, "correct": 4,
                                 "pass_rate": 1.0, "truncated": 0.0, "label": "judge", "mean_answer_tokens": None}
    assert pick(rows["p:1"]) == {"answers": 4, "failed": 0, "cut": 2, "undecided": 0, "wrong": 0, "correct": 2,
                                 "pass_rate": 0.5, "truncated": 0.5, "label": "judge", "mean_answer_tokens": None}
    assert pick(rows["p:2"]) == {"answers": 4, "failed": 1, "cut": 0, "undecided": 0, "wrong": 3, "correct": 0,
                                 "pass_rate": 0.0, "truncated": 0.0, "label": "judge", "mean_answer_tokens": None}
    assert rows["p:0"]["max_answer_chars"] == len(answer_text("7"))
    assert steps_of(final.parent) == [("in", 3, 12), ("request failed (no text)", 0, -1),
                                      ("cut by the length limit", 0, -2), ("judge undecided (null)", 0, 0),
                                      ("judged false", -1, -3), ("correct", 2, 6)]
    assert (final.parent / "funnel.png").stat().st_size > 1000


def test_vote_and_judge_vote_rows_carry_the_vote(tmp_path):
    write_origin(tmp_path / "exp")
    cfg = cfg_for(tmp_path)
    vote = rows_of(modes.run(cfg, "vote", save_name="v").parent)
    assert (vote["p:0"]["label"], vote["p:0"]["vote_share"], vote["p:0"]["correct"]) == ("vote", 1.0, 4)
    assert (vote["p:1"]["label"], vote["p:1"]["vote_share"]) == (None, 1.0)  # 2 of 2, under min_vote 4
    assert (vote["p:2"]["vote_share"], vote["p:2"]["vote_margin"]) == (0.6667, 0.3333)
    assert steps_of(tmp_path / "exp" / "vote" / "v")[-1] == ("pseudo-labelled (in a clear vote's top group)", 1, 4)
    judge_vote = rows_of(modes.run(cfg, "judge_vote", save_name="jv").parent)
    assert {k: r["label"] for k, r in judge_vote.items()} == {"p:0": "vote", "p:1": "dataset", "p:2": "dataset"}
    assert judge_vote["p:2"]["vote_share"] == 0.6667 and judge_vote["p:0"]["pass_rate"] == 1.0


def test_sharded_judge_writes_the_file_once_the_folder_is_complete(tmp_path):
    write_origin(tmp_path / "exp", world=1)
    cfg = cfg_for(tmp_path)
    first = modes.run(cfg, "judge", rank=0, world=2, save_name="j")
    assert not (first.parent / "problems.jsonl").exists()  # half the answers: a problem's rows would be partial
    modes.run(cfg, "judge", rank=1, world=2, save_name="j")
    rows = rows_of(first.parent)
    assert sum(r["answers"] for r in rows.values()) == 12 and rows["p:1"]["cut"] == 2


def test_token_counts_come_from_the_adaptive_loops_answer_stats(tmp_path):
    origin = write_origin(tmp_path / "exp")
    with open(origin / "answer_stats_0_1.jsonl", "w") as f:
        for j, tokens in enumerate((100, 300, 200, 400)):
            f.write(json.dumps({"index": f"p:0_{j}", "tokens": tokens, "finish": "stop"}) + "\n")
    rows = rows_of(modes.run(cfg_for(tmp_path), "judge", save_name="j").parent)
    assert (rows["p:0"]["mean_answer_tokens"], rows["p:0"]["max_answer_tokens"]) == (250.0, 400)
    assert rows["p:1"]["mean_answer_tokens"] is None


def test_a_tally_sorts_each_answer_into_one_kind():
    t = problem_stats.Tally()
    kinds = [t.add(None), t.add(10, True, cut=True), t.add(10, None), t.add(10, False), t.add(10, True),
             t.add(10, None, judged=False)]
    assert kinds == ["failed", "cut", "undecided", "wrong", "correct", "wrong"]
    assert (t.answers, t.answered, t.true, t.false) == (6, 5, 2, 1)
    row = t.row("x")
    assert row["pass_rate"] == round(2 / 3, 4) and row["truncated"] == 0.2


def test_a_damaged_answer_line_is_skipped_not_fatal(tmp_path):
    origin = write_origin(tmp_path / "exp")
    shard = origin / "0_1.jsonl"
    lines = shard.read_bytes().splitlines(keepends=True)
    lines[1] = b"{not json\n"  # p:0's second answer, damaged
    shard.write_bytes(b"".join(lines))
    rows = rows_of(modes.run(cfg_for(tmp_path), "vote", save_name="v").parent)
    assert rows["p:0"]["answers"] == 3 and rows["p:2"]["answers"] == 4


def test_one_cut_rule_for_the_funnel_the_loop_and_show():
    from reasonlite import show
    final = "<|channel|>analysis<|message|>work<|end|><|start|>assistant<|channel|>final<|message|>"
    cases = [(final + "So \\boxed{12}.", None, False),
             (final + "So \\boxed{\\frac{1}{", None, True),  # stopped inside the box it opened
             (final + "So \\boxed{12} and \\boxed{1", None, True),  # the last box is the answer, and it is open
             ("<|channel|>analysis<|message|>still thinking", None, True),  # no final answer
             (final + "So \\boxed{\\frac{1}{", "stop", False),  # the server's word wins where it was recorded
             (final + "So \\boxed{12}.", "length", True)]
    for answer, finish, cut in cases:
        assert problem_stats.is_cut(answer, finish) is cut, answer
        assert show.is_cut({"answer": answer, "finish_reason": finish}) is cut, answer
    assert show.is_cut({"answer": None}) is None

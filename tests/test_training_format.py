"""utils/saving_to_training_format.py: the seed's harmony conversion, each drop reason, chunks, filters, bad input."""
import json
import re
from pathlib import Path

import pytest
from conftest import SHARED, run_main

from reasonlite.prompts import HARMONY_TEMPLATE, INFER_SUFFIX, infer_prompt

SCRIPT = "utils/saving_to_training_format.py"
ANALYSIS = "We need 3 + 4. Adding gives 7.\n\nCheck: 7 - 4 = 3."
FINAL = "Adding the numbers:\n\n$$3 + 4 = 7$$\n\n**Answer:** \\boxed{7}"


def harmony_input(problem="What is $3 + 4$?", level="medium"):
    return HARMONY_TEMPLATE.format(reasoning_level=level, prompt=infer_prompt(problem))


def harmony_answer(analysis=ANALYSIS, final=FINAL):
    # What gpt-oss returns through /v1/completions with skip_special_tokens=false after a prompt ending in
    # `<|start|>assistant`: the channel tag comes first.
    return (f"<|channel|>analysis<|message|>{analysis}<|end|>"
            f"<|start|>assistant<|channel|>final<|message|>{final}")


def record(i=0, judge=True, answer=None, problem="What is $3 + 4$?", model_input=None):
    model_input = harmony_input(problem) if model_input is None else model_input
    answer = harmony_answer() if answer is None else answer
    return {"info": {"prompt": problem, "expected_answer": "7", "index": f"t:{i}"}, "index": f"t:{i}_0",
            "model_input": model_input, "model_output": model_input + answer, "prompt": problem,
            "answer": answer, "judge": judge}


def write_judged(base, records, stage="answer_judge", run="20250101_000000"):
    folder = Path(base) / stage / run
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "0_1.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def convert(path, *args):
    """The conversion's main() in this process (the script itself runs as a subprocess in the bad-input survey and
    the kill tests)."""
    from reasonlite import training_data
    return run_main(training_data.main, "-d", path, *args)


def funnel_rows(stdout):
    """{step: (problems, answers)} of the funnel table the conversion prints."""
    rows = {}
    for line in stdout.split("[funnel]:\n", 1)[1].splitlines()[1:]:
        m = re.match(r"^  (?:  |- |= )(.{48}) +(-?\d+) +(-?\d+)$", line)
        if not m:
            break
        rows[m.group(1).strip()] = (int(m.group(2)), int(m.group(3)))
    return rows


def read_parts(folder):
    parts = sorted(Path(folder).glob("data_part*.jsonl"), key=lambda p: int(p.stem[len("data_part"):]))
    return parts, [json.loads(x) for p in parts for x in p.read_text().splitlines()]


def test_harmony_record_converts_exactly_as_the_seed(tmp_path):
    path = write_judged(tmp_path / "exp", [record()])
    proc = convert(path)
    assert proc.returncode == 0, proc.stderr
    parts, rows = read_parts(tmp_path / "exp" / "format_data")
    assert [p.name for p in parts] == ["data_part1.jsonl"]
    assert rows == [{"messages": [
        {"role": "user", "content": "What is $3 + 4$?\nPlease reason step by step, and put your final answer "
                                    "within \\boxed{}."},
        {"role": "assistant", "content": "<think>\nWe need 3 + 4. Adding gives 7.\n\nCheck: 7 - 4 = 3.\n</think>"
                                         "Adding the numbers:\n\n$$3 + 4 = 7$$\n\n**Answer:** \\boxed{7}"},
    ]}]
    assert "[correct ratio]: 1.0" in proc.stdout


def test_seed_rule_on_model_output_and_trailing_return():
    from reasonlite.convert import convert as conv
    # A seed record: no 'answer' needed when model_output = model_input + generation.
    rec = record(answer=harmony_answer(final="x \\boxed{7}<|return|>"))
    del rec["answer"]
    reason, messages = conv(rec, "f:1")
    assert reason is None
    assert messages[1]["content"] == f"<think>\n{ANALYSIS}\n</think>x \\boxed{{7}}"


def test_think_style_records_convert_too(tmp_path):
    chatml = f"<|im_start|>user\nWhat is $3 + 4$?{INFER_SUFFIX}<|im_end|>\n<|im_start|>assistant\n"
    recs = [record(0, answer="<think>\nAdd them: 7.\n</think>\n\nThe answer is \\boxed{7}.", model_input=chatml),
            # a template that prefills `<think>\n`: the generation holds only the closing tag
            record(1, answer="Add them: 7.\n</think>\n\n\\boxed{7}", model_input="<｜User｜>What is $3 + 4$?"
                   + INFER_SUFFIX + "<｜Assistant｜><think>\n")]
    path = write_judged(tmp_path / "exp", recs)
    proc = convert(path, "--chunk-size", "1", "--seed", "0")
    assert proc.returncode == 0, proc.stderr
    _, rows = read_parts(tmp_path / "exp" / "format_data")
    got = sorted((r["messages"][0]["content"], r["messages"][1]["content"]) for r in rows)
    user = "What is $3 + 4$?" + INFER_SUFFIX
    assert got == sorted([(user, "<think>\nAdd them: 7.\n</think>\n\n\\boxed{7}"),
                          (user, "<think>\nAdd them: 7.\n</think>\n\nThe answer is \\boxed{7}.")])


def test_each_drop_reason_is_counted(tmp_path):
    a = "<|channel|>analysis<|message|>"
    recs = [
        record(0),  # kept
        record(1, judge=False),
        record(2, judge=None),
        record(3, judge=None, answer=None),  # a failed generation stays unjudged
        record(4, answer=a + "still thinking when max_tokens ran out"),  # truncated
        record(5, answer=a + "x<|end|><|start|>assistant<|channel|>commentary<|message|>y"),  # not analysis+final
        record(6, answer=a + "x<|end|><|start|>assistant<|channel|>analysis<|message|>y<|end|>"
                                "<|start|>assistant<|channel|>final<|message|>z"),  # two analysis messages
        record(7, answer="The answer is \\boxed{7}."),  # no channels at all
        record(8, answer=a + "x<|end|><|start|>assistant<|channel|>final<|message|>z<|start|>user<|message|>q"),
    ]
    recs[3]["answer"] = recs[3]["model_output"] = None
    path = write_judged(tmp_path / "exp", recs)
    proc = convert(path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "[total data]: 9" in out and "[kept data]: 1" in out
    assert "[format mismatch ratio]: 0.4444" in out  # 4 of 9
    assert "[truncated ratio]: 0.1111" in out
    assert "[error ratio]: 0.2222" in out
    assert "[wrong ratio]: 0.1111" in out
    assert "[correct ratio]: 0.1111" in out
    rows = funnel_rows(out)
    assert rows["in"] == (9, 9) and rows["written"] == (1, 1)
    assert rows["format mismatch"] == (-4, -4) and rows["truncated"] == (-1, -1)
    assert rows["judge null (error)"] == (-2, -2) and rows["judge false (wrong)"] == (-1, -1)


def test_chunks_are_shuffled_deterministic_and_replace_stale_parts(tmp_path):
    recs = [record(i, answer=harmony_answer(final=f"answer {i}")) for i in range(25)]
    path = write_judged(tmp_path / "exp", recs, stage="answer_judge_vote")
    out = tmp_path / "exp" / "format_data"
    out.mkdir(parents=True)
    (out / "data_part9.jsonl").write_text("{}\n")  # left by an earlier, bigger conversion
    proc = convert(path, "--chunk-size", "10")
    assert proc.returncode == 0, proc.stderr
    parts, rows = read_parts(out)
    assert [p.name for p in parts] == ["data_part1.jsonl", "data_part2.jsonl", "data_part3.jsonl"]
    assert [len(p.read_text().splitlines()) for p in parts] == [10, 10, 5]
    finals = [r["messages"][1]["content"].split("</think>")[1] for r in rows]
    assert sorted(finals) == sorted(f"answer {i}" for i in range(25))
    assert finals != [f"answer {i}" for i in range(25)]  # shuffled
    assert not list(out.glob(".*"))  # no temporary files left
    assert convert(path, "--chunk-size", "10").returncode == 0
    assert read_parts(out)[1] == rows  # same seed, same order


BENCH_PROBLEMS = [
    "Let $ABC$ be a triangle with $AB = 13$, $BC = 14$ and $CA = 15$. Find the radius of the circle tangent to all "
    "three sides of the triangle, and express the area of the triangle in terms of that radius.",
    "A sequence is defined by $a_1 = 3$ and $a_{n+1} = 2a_n - 1$ for every positive integer $n$. Find the "
    "remainder when $a_{2024}$ is divided by $1000$.",
    "How many positive divisors of $2^{10} 3^{6}$ are perfect squares but not perfect cubes?",
]


def write_benchmarks(folder):
    """Two small benchmark files of our own, in the benchmark format (id, problem, answer)."""
    folder.mkdir(parents=True, exist_ok=True)
    a, b = folder / "bench_a.jsonl", folder / "bench_b.jsonl"
    a.write_text("".join(json.dumps({"id": str(i), "problem": p, "answer": "1"}) + "\n"
                         for i, p in enumerate(BENCH_PROBLEMS[:2])))
    b.write_text(json.dumps({"id": "0", "problem": BENCH_PROBLEMS[2], "answer": "1"}) + "\n")
    return a, b


def test_filters_dedup_decontaminate_max_tokens(tmp_path, tiny_model):
    bench = BENCH_PROBLEMS[1]
    long_final = "word " * 400
    recs = [
        record(0),
        record(1),  # the same answer to the same problem again
        record(2, problem=bench),  # a benchmark problem
        record(3, problem="Moreover, " + bench[:90]),  # a part of one, with other words around it
        record(4, answer=harmony_answer(final=long_final)),
        record(5, problem="How many primes are less than 20?"),
    ]
    path = write_judged(tmp_path / "exp", recs)
    a, b = write_benchmarks(tmp_path / "benchmarks")
    proc = convert(path, "--dedup", "--decontaminate", a, "--decontaminate", b,
                   "--max-tokens", "300", "--tokenizer", tiny_model)
    assert proc.returncode == 0, proc.stderr
    _, rows = read_parts(tmp_path / "exp" / "format_data")
    assert sorted(r["messages"][0]["content"] for r in rows) == sorted(
        [infer_prompt("What is $3 + 4$?"), infer_prompt("How many primes are less than 20?")])
    rows = funnel_rows(proc.stdout)
    assert rows["contaminated"] == (-2, -2)
    assert "contaminated: 8-gram overlap with 3 problems of 2 benchmark source(s) 2" in proc.stdout
    assert rows["duplicate answer"] == (-1, -1)  # record 1 is problem t:1, whose one answer repeats t:0's
    assert rows["longer than 300 tokens"] == (-1, -1)
    assert rows["written"] == (2, 2)


@pytest.mark.skipif(not (SHARED / "benchmarks" / "aime24.jsonl").exists(),
                    reason="needs ../shared/benchmarks (absent in a user's clone)")
def test_decontaminate_against_the_public_benchmarks(tmp_path):
    aime = json.loads((SHARED / "benchmarks" / "aime24.jsonl").read_text().splitlines()[0])["problem"]
    path = write_judged(tmp_path / "exp", [record(0), record(1, problem=aime)])
    proc = convert(path, "--decontaminate", SHARED / "benchmarks" / "aime24.jsonl",
                   "--decontaminate", SHARED / "benchmarks" / "math500.jsonl")
    assert proc.returncode == 0, proc.stderr
    assert funnel_rows(proc.stdout)["contaminated"] == (-1, -1)
    assert "contaminated: 8-gram overlap with 530 problems of 2 benchmark source(s)" in proc.stdout


def test_decontaminate_with_an_unloadable_dataset_id_is_one_error_line(tmp_path):
    path = write_judged(tmp_path / "exp", [record()])
    proc = convert(path, "--decontaminate", "no-such-org/no-such-benchmark:test")
    assert proc.returncode == 1
    lines = _error_lines(proc)
    assert len(lines) == 1 and lines[0].startswith(
        "error: no-such-org/no-such-benchmark:test: not a file, a folder or a loadable dataset id")


def test_ngrams_short_texts_and_case():
    from reasonlite.decontaminate import ngrams
    assert ngrams("Find X.", 8) == {("find", "x")}
    assert len(ngrams(" ".join(map(str, range(10))), 8)) == 3


def _error_lines(proc):
    return [line for line in proc.stderr.splitlines() if line.strip()]


def test_not_judged_data_is_one_error_line(tmp_path):
    rec = record()
    del rec["judge"]
    path = write_judged(tmp_path / "exp", [rec], stage="answer_origin")
    proc = convert(path)
    assert proc.returncode == 1
    assert _error_lines(proc) == [f"error: {path}:1: no field 'judge'; this is not judged data (pass a file from "
                                  "answer_judge/ or answer_judge_vote/, written by infer.py -m judge or -m judge_vote)"]


def test_missing_fields_are_one_error_line_and_a_damaged_line_is_skipped(tmp_path):
    rec = record(1)
    del rec["model_input"]
    path = write_judged(tmp_path / "exp", [record(0), rec])
    proc = convert(path)
    assert proc.returncode == 1
    assert _error_lines(proc) == [f"error: {path}:2: field 'model_input' is missing or not a string"]
    assert not (tmp_path / "exp" / "format_data" / "data_part1.jsonl").exists()

    # A line that is not JSON at all is damage (a copy cut short), not a wrong file: named, skipped, counted.
    path.write_text(json.dumps(record(0)) + "\n{not json\n")
    proc = convert(path)
    assert proc.returncode == 0, proc.stderr
    assert f"{path}:2: damaged line skipped (not valid JSON" in proc.stderr
    assert "[damaged lines]: 1 skipped" in proc.stdout


def test_run_and_stage_folders_and_incomplete_runs(tmp_path):
    path = write_judged(tmp_path / "exp", [record(0)])
    assert convert(path.parent.parent).returncode == 0  # stage folder: its newest complete run
    (path.parent / "1_2.jsonl.part").write_text("")
    proc = convert(path.parent)
    assert proc.returncode == 1 and "incomplete run folder" in proc.stderr
    proc = convert(tmp_path / "nowhere.jsonl")
    assert proc.returncode == 1 and "no such file or folder" in proc.stderr


def test_nothing_kept_is_an_error_and_writes_nothing(tmp_path):
    path = write_judged(tmp_path / "exp", [record(0, judge=False), record(1, judge=None)])
    proc = convert(path)
    assert proc.returncode == 1
    assert _error_lines(proc)[-1] == f"error: no record survived the filters; nothing written to {path.parents[2]}" \
                                     "/format_data"
    assert not list((tmp_path / "exp" / "format_data").iterdir())


# ---- per-problem filters, Parquet, the funnel (#14); in-process, so they cost no interpreter start ---------------
def answers_of(k, verdicts):
    """Judged answers to problem q:k, one per verdict, each with its own text (so none is a duplicate)."""
    out = []
    for j, verdict in enumerate(verdicts):
        rec = record(0, judge=verdict, answer=harmony_answer(final=f"q{k} answer {j} \\boxed{{7}}"),
                     problem=f"Problem {k}: what is 3 + 4?")
        rec["info"]["index"], rec["index"] = f"q:{k}", f"q:{k}_{j}"
        out.append(rec)
    return out


def problems_by_pass_rate():
    """q:0 always solved, q:1 half the time, q:2 once in ten, q:3 never."""
    return (answers_of(0, [True] * 10) + answers_of(1, [True, False] * 5) + answers_of(2, [True] + [False] * 9)
            + answers_of(3, [False] * 4))


def convert_here(capsys, path, *args):
    from reasonlite import training_data
    training_data.main(["-d", str(path), *map(str, args)])
    return capsys.readouterr().out


def kept_by_problem(folder):
    _, rows = read_parts(folder)
    counts = {}
    for r in rows:
        k = r["messages"][0]["content"].split(":")[0]
        counts[k] = counts.get(k, 0) + 1
    return counts


def test_pass_rate_band_and_per_problem_caps(tmp_path, capsys):
    path = write_judged(tmp_path / "exp", problems_by_pass_rate())
    out = tmp_path / "exp" / "format_data"
    rows = funnel_rows(convert_here(capsys, path, "--pass-rate", "0.1:0.9"))
    assert kept_by_problem(out) == {"Problem 1": 5, "Problem 2": 1}
    assert rows["in"] == (4, 34) and rows["judge false (wrong)"] == (-1, -18)  # q:3 leaves here
    assert rows["pass rate outside 0.1:0.9"] == (-1, -10) and rows["written"] == (2, 6)

    rows = funnel_rows(convert_here(capsys, path, "--max-per-problem", "2"))
    assert kept_by_problem(out) == {"Problem 0": 2, "Problem 1": 2, "Problem 2": 1}
    assert rows["over 2 per problem (uniform)"] == (0, -11) and rows["written"] == (3, 5)

    # By difficulty: ceil(2K(1 - pass rate)), at least 1: q:0 1, q:1 2, q:2 4 (it has 1).
    convert_here(capsys, path, "--max-per-problem", "2", "--per-problem-by", "difficulty")
    assert kept_by_problem(out) == {"Problem 0": 1, "Problem 1": 2, "Problem 2": 1}


def test_the_cap_draws_uniformly_with_the_seed(tmp_path, capsys):
    path = write_judged(tmp_path / "exp", answers_of(0, [True] * 10))
    chosen = []
    for seed in (1, 2, 3, 1):
        convert_here(capsys, path, "--max-per-problem", "3", "--seed", seed)
        chosen.append(sorted(r["messages"][1]["content"].split("answer ")[1][0] for r in
                             read_parts(tmp_path / "exp" / "format_data")[1]))
    assert all(len(c) == 3 for c in chosen) and chosen[0] == chosen[3]
    assert len({tuple(c) for c in chosen}) > 1  # not always the first three


def test_pass_rates_come_from_problems_jsonl_when_the_run_has_one(tmp_path, capsys):
    path = write_judged(tmp_path / "exp", problems_by_pass_rate())
    # The judged run as a whole (say, other shards) solved q:0 half the time: the band keeps it.
    (path.parent / "problems.jsonl").write_text(json.dumps({"index": "q:0", "pass_rate": 0.5}) + "\n")
    convert_here(capsys, path, "--pass-rate", "0.1:0.9")
    assert kept_by_problem(tmp_path / "exp" / "format_data") == {"Problem 0": 10, "Problem 1": 5, "Problem 2": 1}


def test_answers_stopped_at_the_length_limit_are_dropped_as_truncated(tmp_path, capsys):
    recs = answers_of(0, [True] * 3)
    path = write_judged(tmp_path / "exp", recs)
    origin = tmp_path / "exp" / "answer_origin" / "run"
    origin.mkdir(parents=True)
    (origin / "answer_stats_0_1.jsonl").write_text(
        json.dumps({"index": "q:0_1", "finish": "length", "tokens": 30000}) + "\n"
        + json.dumps({"index": "q:0_2", "finish": "stop", "tokens": 900}) + "\n")
    (path.parent / "funnel.json").write_text(json.dumps({"source": str(origin)}))
    rows = funnel_rows(convert_here(capsys, path))
    assert rows["truncated"] == (0, -1) and rows["written"] == (1, 2)
    assert "q0 answer 1" not in (tmp_path / "exp" / "format_data" / "data_part1.jsonl").read_text()


def test_parquet_shards_load_with_datasets_as_they_are(tmp_path, capsys):
    import datasets
    path = write_judged(tmp_path / "exp", answers_of(0, [True] * 7))
    out = tmp_path / "exp" / "format_data"
    convert_here(capsys, path, "--format", "jsonl,parquet", "--chunk-size", "3")
    shards = sorted(out.glob("train-*.parquet"))
    assert [p.name for p in shards] == [f"train-0000{i}-of-00003.parquet" for i in range(3)]
    ds = datasets.load_dataset("parquet", data_files=[str(p) for p in shards], split="train",
                               cache_dir=str(tmp_path / "cache"))
    assert ds.num_rows == 7 and ds.column_names == ["messages"]
    assert [row["messages"] for row in ds] == [r["messages"] for r in read_parts(out)[1]]  # same order
    card = (out / "README.md").read_text()
    assert card.startswith("---\nconfigs:") and 'path: "train-*.parquet"' in card
    assert "7 conversations for 1 problems" in card and str(path) in card
    # The card's config is what load_dataset(folder) follows: the Parquet, not the JSONL beside it.
    assert datasets.load_dataset(str(out), split="train", cache_dir=str(tmp_path / "cache")).num_rows == 7
    # Parquet alone: the JSONL of the earlier conversion is stale and goes.
    convert_here(capsys, path, "--format", "parquet")
    assert not list(out.glob("data_part*.jsonl")) and [p.name for p in out.glob("*.parquet")] == \
        ["train-00000-of-00001.parquet"]
    assert json.loads((out / "funnel.json").read_text())["steps"][-1] == {"step": "written", "problems": 1,
                                                                          "answers": 7}


def test_bad_filter_arguments_are_one_line(tmp_path, capsys):
    from reasonlite import training_data
    for args, message in ((["--pass-rate", "0.9:0.1"], "--pass-rate '0.9:0.1'"), (["--format", "csv"], "--format"),
                          (["--max-per-problem", "0"], "--max-per-problem must be at least 1")):
        with pytest.raises(SystemExit):
            training_data.parse_args(["-d", "x", *args])
        assert message in capsys.readouterr().err


# ---- answers with no boxed final answer: counted, and dropped with --require-box ----------------------------------
def test_unboxed_answers_are_counted_and_require_box_drops_them(tmp_path, capsys):
    finals = ["So \\boxed{7}.",  # kept either way
              "The answer is 7.",  # judged right from the phrase, but nothing boxed
              "Adding gives 7; I double-checked \\boxed{7} in my head, so \\boxed{}",  # the last box is empty
              "It is \\boxed{7",  # a box that never closes
              "**Final Answer**\n\n\\[\\boxed{7}\\]"]
    recs = []
    for j, final in enumerate(finals):
        rec = record(0, answer=harmony_answer(analysis="\\boxed{7} in the reasoning does not count", final=final))
        rec["info"]["index"], rec["index"] = f"q:{j % 2}", f"q:{j % 2}_{j}"
        recs.append(rec)
    path = write_judged(tmp_path / "exp", recs)
    out_dir = tmp_path / "exp" / "format_data"

    out = convert_here(capsys, path)
    assert "[kept data]: 5" in out
    assert "[no boxed final answer]: 3 of 5 kept answers" in out
    assert "no boxed final answer" not in funnel_rows(out)  # counted, not a drop, without the flag
    assert "written answers with no boxed final answer (--require-box drops them) 3" in out
    assert len(read_parts(out_dir)[1]) == 5

    out = convert_here(capsys, path, "--require-box")
    rows = funnel_rows(out)
    assert "[kept data]: 2" in out and "[no boxed final answer]: 3 dropped (--require-box)" in out
    assert rows["no boxed final answer"] == (-1, -3)  # q:1 loses both its answers, q:0 keeps 2 of 3
    assert rows["written"] == (1, 2)
    finals_written = sorted(r["messages"][1]["content"].split("</think>")[1] for r in read_parts(out_dir)[1])
    assert finals_written == sorted([finals[0], finals[4]])
    assert "--require-box" in (out_dir / "README.md").read_text()
    assert json.loads((out_dir / "funnel.json").read_text())["steps"][5]["step"] == "no boxed final answer"


def test_require_box_reads_the_final_text_of_think_style_records(tmp_path, capsys):
    chatml = f"<|im_start|>user\nWhat is $3 + 4$?{INFER_SUFFIX}<|im_end|>\n<|im_start|>assistant\n"
    recs = [record(0, answer="<think>\nSo \\boxed{7}.\n</think>\n\nThe answer is 7.", model_input=chatml),
            record(1, answer="<think>\nAdd.\n</think>\n\n$\\boxed{7}$", model_input=chatml)]
    path = write_judged(tmp_path / "exp", recs)
    out = convert_here(capsys, path, "--require-box")
    assert "[kept data]: 1" in out and funnel_rows(out)["no boxed final answer"] == (-1, -1)

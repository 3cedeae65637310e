"""Write an answer_origin folder of N realistic gpt-oss records, for benchmarks and scale tests.

    python3 bench/make_synthetic.py 100000 --out datas/synthetic [--per-problem 32] [--shards 1]

Each record looks like what infer.py writes for gpt-oss: the seed's harmony prompt, a long analysis channel, a final
channel ending in \\boxed{...}. Answers of one problem are mostly the gold answer in several spellings (AIME padding,
\\dfrac, decimals, \\text{}), some wrong answers, and a few truncated outputs with no final channel, so a grader
sees the mix it meets on real teacher data. Deterministic for a given N and --seed.
"""
import argparse
import json
import random
from pathlib import Path


from reasonlite.prompts import HARMONY_TEMPLATE, infer_prompt

SENTENCES = [
    "Let us denote the unknown quantity by $x$ and write the condition as an equation.",
    "We have $x^2 - 5x + 6 = 0$, so $(x-2)(x-3) = 0$.",
    "By the AM-GM inequality, $\\frac{a+b}{2} \\ge \\sqrt{ab}$ with equality when $a = b$.",
    "Consider the residues modulo $7$: the powers of $3$ cycle with period $6$.",
    "Then the sum telescopes: $\\sum_{k=1}^{n} \\left(\\frac{1}{k} - \\frac{1}{k+1}\\right) = 1 - \\frac{1}{n+1}$.",
    "Wait, we should double-check the boundary case where the discriminant vanishes.",
    "Compute the area with the shoelace formula over the vertices in order.",
    "So the probability is the ratio of favourable outcomes to $\\binom{10}{3} = 120$.",
    "Let me verify with a small case: for $n = 3$ the count is $\\{1, 2, 3\\}$, which matches.",
    "Hence the expression simplifies to $\\frac{2\\sqrt{3}}{3}$ after rationalising.",
    "Using Vieta's formulas, $r_1 + r_2 = 5$ and $r_1 r_2 = 6$.",
    "Actually, that is not right; the constraint $x > 0$ excludes the negative root.",
]


def gold_and_variants(rng, i):
    """A gold answer and the ways a model spells it right and wrong."""
    kind = i % 6
    if kind == 0:  # AIME integer
        n = rng.randint(1, 999)
        return f"{n:03d}" if n < 100 and rng.random() < 0.5 else str(n), [str(n), f"{n:03d}", f"{n}.0"], \
            [str(n + 1), str(n * 2), str(max(0, n - 7))]
    if kind == 1:  # fraction
        a, b = rng.randint(1, 30), rng.randint(31, 60)
        return f"\\frac{{{a}}}{{{b}}}", [f"\\frac{{{a}}}{{{b}}}", f"\\dfrac{{{a}}}{{{b}}}", f"{a}/{b}"], \
            [f"\\frac{{{a + 1}}}{{{b}}}", f"\\frac{{{b}}}{{{a}}}"]
    if kind == 2:  # surd
        a, b = rng.randint(2, 9), rng.choice([2, 3, 5, 7])
        return f"{a}\\sqrt{{{b}}}", [f"{a}\\sqrt{{{b}}}", f"{a} \\sqrt{b}", f"\\sqrt{{{a * a * b}}}"], \
            [f"{a + 1}\\sqrt{{{b}}}", f"{a}\\sqrt{{{b + 1}}}"]
    if kind == 3:  # AMC-style decimal gold
        n = rng.randint(1, 60)
        return f"{n}.0", [str(n), f"{n}.0", f"\\text{{{n}}}"], [str(n + 2), f"{n}.5"]
    if kind == 4:  # interval
        a, b = rng.randint(-9, 0), rng.randint(1, 9)
        return f"[{a}, {b})", [f"[{a}, {b})", f"\\left[{a},{b}\\right)"], [f"({a}, {b})", f"[{a}, {b}]"]
    a, b = rng.randint(1, 9), rng.randint(1, 9)  # ordered pair
    return f"({a}, {b})", [f"({a}, {b})", f"({a},{b})"], [f"({b + 1}, {a})", f"({a}, {b + 1})"]


def record(rng, info, j, answer_box, model_input):
    analysis = " ".join(rng.choice(SENTENCES) for _ in range(rng.randint(15, 60)))
    if answer_box is None:  # truncated: max_tokens hit inside the analysis channel
        answer = f"<|channel|>analysis<|message|>{analysis}"
    else:
        answer = (f"<|channel|>analysis<|message|>{analysis}<|end|><|start|>assistant<|channel|>final<|message|>"
                  f"We found the answer above. Therefore the final answer is $\\boxed{{{answer_box}}}$.")
    return {"info": info, "index": f"{info['index']}_{j}", "model_input": model_input,
            "model_output": model_input + answer, "prompt": info["prompt"], "answer": answer}


def write(n, out, per_problem=32, shards=1, seed=0, run="synthetic"):
    rng = random.Random(seed)
    folder = Path(out) / "answer_origin" / run
    folder.mkdir(parents=True, exist_ok=True)
    files = [open(folder / f"{r}_{shards}.jsonl", "w") for r in range(shards)]
    info_f = open(Path(out) / "info.jsonl", "w")
    written = 0
    i = 0
    try:
        while written < n:
            gold, right, wrong = gold_and_variants(rng, i)
            info = {"prompt": f"Synthetic problem {i}: " + rng.choice(SENTENCES), "expected_answer": gold,
                    "index": f"syn:{i}"}
            info_f.write(json.dumps(info) + "\n")
            model_input = HARMONY_TEMPLATE.format(reasoning_level="medium", prompt=infer_prompt(info["prompt"]))
            p_right = rng.choice([0.9, 0.7, 0.4])
            for j in range(min(per_problem, n - written)):
                r = rng.random()
                box = None if r < 0.05 else rng.choice(right) if r < 0.05 + p_right else rng.choice(wrong)
                rec = record(rng, info, j, box, model_input)
                files[written % shards].write(json.dumps(rec, ensure_ascii=False) + "\n")
                written += 1
            i += 1
    finally:
        for f in files:
            f.close()
        info_f.close()
    return folder


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int)
    parser.add_argument("--out", default="datas/synthetic")
    parser.add_argument("--per-problem", type=int, default=32)
    parser.add_argument("--shards", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    folder = write(args.n, args.out, args.per_problem, args.shards, args.seed)
    print(f"wrote {args.n} records to {folder}")


if __name__ == "__main__":
    main()

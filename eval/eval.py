"""Evaluate one model on one benchmark: n samples per problem, graded, pass@k / maj@k per problem and dataset.

    cd eval
    python3 eval.py --base_model amd/ReasonLite-0.6B --data_id zwhe99/aime90 --output_dir result/x \
        --bf16 True --max_model_len 65536 --temperature 1 --top_p 0.98 --n 16      # vLLM's offline engine
    python3 eval.py --base_model ../.cache/tiny-model --server_url http://127.0.0.1:8040 \
        --data_id zwhe99/aime90 --data_dir ../../shared/benchmarks/aime24.jsonl --output_dir result/y --n 4

Writes config.json, generation.jsonl, result.log and metrics.json into output_dir. Usually started by start.py.
This file is an entry script, never imported (its name would shadow Python's builtin `eval`); the code is
reasonlite/evaluation/evaluate.py (also installed as `reasonlite-eval`).
"""
from reasonlite.evaluation.evaluate import main

if __name__ == "__main__":  # vLLM starts its workers with spawn, which re-imports this file
    main()

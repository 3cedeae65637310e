"""Turn judged answers into chat SFT data: keep the correct ones, convert them, filter, shuffle, write in chunks.

    python3 utils/saving_to_training_format.py -d datas/<exp>/answer_judge/<run>/0_1.jsonl
    python3 utils/saving_to_training_format.py -d datas/<exp>/answer_judge_vote/<run> \\
        --max-tokens 32768 --tokenizer Qwen/Qwen3-0.6B --dedup --decontaminate ../shared/benchmarks/aime24.jsonl

Writes `<exp>/format_data/data_part{1,2,...}.jsonl`, shuffled, 100000 conversations each. The summary counts the
kept answers whose final text has no \\boxed{} answer; `--require-box` drops them (docs/grader.md, section 7). The
seed's path to this step; the code is reasonlite/training_data.py (also installed as `reasonlite-format`).
"""
from reasonlite.training_data import main

if __name__ == "__main__":
    main()

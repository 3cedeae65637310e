"""Run one mode of the data pipeline over the latest data of an experiment.

    python3 infer.py -c config/oss.yaml -m infer        # num_answer answers per problem -> answer_origin/<ts>/
    python3 infer.py -c config/oss.yaml -m vote         # pseudo-labels by majority vote -> vote/<ts>/
    python3 infer.py -c config/oss.yaml -m judge        # each answer against expected_answer -> answer_judge/<ts>/
    python3 infer.py -c config/oss.yaml -m judge_vote   # each answer against the pseudo-label -> answer_judge_vote/
    python3 infer.py -c config/oss.yaml -m infer -l 0 -g 4 -s run1   # shard 0 of 4, into answer_origin/run1/

Every mode writes `<base_data_path>/<stage>/<run>/<rank>_<world>.jsonl`. A rerun carries over what earlier runs
finished and does only the rest, so after a crash you run the same command again. The code is reasonlite/modes.py
(also installed as `reasonlite-infer`).
"""
from reasonlite.modes import main

if __name__ == "__main__":
    main()

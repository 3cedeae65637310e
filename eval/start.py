"""Run the evaluation tasks of a YAML file on a pool of GPU workers, one evaluator process per task.

    cd eval
    python3 start.py -c config/eval.yaml                        # every visible GPU, results in result/<timestamp>/
    python3 start.py -c config/eval.yaml --gpu_index 0,1,2,3    # these GPUs only
    python3 start.py -c config/eval.yaml -s 20250101_120000     # rerun into that folder: finished samples are kept
    python3 report.py result/<timestamp>                        # the results table and a pass@k plot

The YAML is a list of task blocks whose keys are eval.py's options (python3 eval.py --help); a list value expands
into one task per combination. The code is reasonlite/evaluation/tasks.py (also installed as
`reasonlite-eval-start`).
"""
from reasonlite.evaluation.tasks import main

if __name__ == "__main__":
    main()

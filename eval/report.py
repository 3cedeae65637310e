"""Print the seed's results table for a folder of evaluation results, and plot pass@k against k.

    cd eval && python3 report.py result/<timestamp>          # a run folder of start.py (or one task folder)
    python3 report.py result/<timestamp> --png plot.png      # default: <folder>/pass_at_k.png
    python3 report.py result/<timestamp> --ci --truncation   # standard errors, 95% intervals, samples cut
    python3 report.py --diff result/<a> result/<b>           # B - A with paired intervals; refuses other problems
    python3 report.py --audit result/<timestamp>             # our grader against math-verify alone

The code is reasonlite/evaluation/report.py (also installed as `reasonlite-report`).
"""
from reasonlite.evaluation.report import main

if __name__ == "__main__":
    main()

"""What an experiment folder holds: each stage's latest run, its counts, cut answers, damaged lines and funnels.

    python3 -m utils.show datas/<exp>
    python3 utils/show.py datas/<exp> --max-truncated 0.2

The seed keeps its helper scripts in utils/; this is that path to reasonlite/show.py (also installed as
`reasonlite-show`, and `python3 -m reasonlite.show`).
"""
from reasonlite.show import main

if __name__ == "__main__":
    main()

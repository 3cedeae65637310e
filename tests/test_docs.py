"""Every command the README and docs/ show can be run as written after `make setup` (with .venv activated): each
`python3 ...` or `bash ...` command names a file or module that exists, and its `--help` runs.

Commands are read from fenced code blocks (a `cd DIR &&` or `cd DIR` earlier in the block moves where the next ones
run; `VAR=value` prefixes and `\\` continuations are understood) and from inline code spans in the text.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

PAGES = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
SPAN = re.compile(r"`((?:python3|bash|cd) [^`]+)`")


def commands(page):
    """(page, line number, folder it runs in, argv) of every python3/bash command the page shows."""
    out, in_block, cwd, joined = [], False, ROOT, ""
    for n, line in enumerate(page.read_text().splitlines(), 1):
        if line.startswith("```"):
            in_block, cwd, joined = not in_block, ROOT, ""
            continue
        texts = [line.strip()] if in_block else [m.group(1) for m in SPAN.finditer(line)]
        for text in texts:
            if in_block:
                text = joined + " " + text.removeprefix("$ ") if joined else text.removeprefix("$ ")
                if text.endswith("\\"):
                    joined = text[:-1]
                    continue
                joined = ""
            here = cwd if in_block else ROOT
            for part in re.split(r"\s*(?:&&|;|\|\||\|)\s*", text.split(" #")[0]):
                words = part.split()
                while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):
                    words = words[1:]
                if words[:1] == ["cd"] and len(words) == 2:
                    here = here / words[1]
                elif words[:1] in (["python3"], ["bash"]) and len(words) > 1:
                    out.append((page.name, n, here, words))
            if in_block:
                cwd = here
    return out


def target(cwd, argv):
    """What the command runs: ("module", name) or ("file", path); a file not found where it runs is looked for in
    eval/ too, where the evaluator's pages run their commands."""
    if argv[0] == "python3" and argv[1] == "-m":
        return "module", argv[2]
    for folder in (cwd, ROOT / "eval"):
        if (folder / argv[1]).is_file():
            return "file", (folder / argv[1]).resolve()
    return "file", cwd / argv[1]


ALL = sorted({(argv[0], *target(cwd, argv)) for page in PAGES for (_, _, cwd, argv) in commands(page)},
             key=str)


def test_the_docs_show_commands_and_every_file_they_name_exists():
    shown = [c for page in PAGES for c in commands(page)]
    assert len(shown) > 50  # the reader found the commands
    missing = [f"{page}:{n}: {' '.join(argv)}" for page, n, cwd, argv in shown
               if target(cwd, argv)[0] == "file" and not target(cwd, argv)[1].is_file()]
    assert not missing, missing
    for page in PAGES[1:]:  # every docs page opens with its contents
        assert "**Contents**" in page.read_text()[:1000], page


def test_every_link_between_the_pages_leads_somewhere():
    """Relative links point at files that exist, and a #part at a heading of that page."""
    def anchors(page):
        heads = re.findall(r"^#+ (.+)$", re.sub(r"```.*?```", "", page.read_text(), flags=re.S), re.M)
        return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in heads}

    broken = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"^[a-z]+://", target):
                continue
            path, _, part = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            if not dest.exists():
                broken.append(f"{page.name}: {target} (no such file)")
            elif part and dest.suffix == ".md" and part not in anchors(dest):
                broken.append(f"{page.name}: {target} (no such heading)")
    assert not broken, broken


@pytest.mark.parametrize("runner, kind, what", ALL, ids=lambda x: str(x).replace(str(ROOT) + "/", ""))
def test_help_of_every_command_runs(runner, kind, what):
    if kind == "module":
        argv = [sys.executable, "-m", what, "--help"]
        cwd = ROOT
    else:
        argv = ([sys.executable] if runner == "python3" else ["bash"]) + [str(what), "--help"]
        cwd = Path(what).parent if Path(what).parent.name == "eval" else ROOT
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() or proc.stderr.strip()

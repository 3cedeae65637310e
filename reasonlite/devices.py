"""The devices of this machine and the environment each vLLM process starts with (a server of vllm_start.py, or an
evaluation task's offline engine): one function, process_env, builds it for both.

    python3 -m reasonlite.devices       # the device kind, the GPUs visible and the open-files limit here

What process_env sets, and why:
- CUDA_VISIBLE_DEVICES to the process's GPUs; on ROCm HIP_VISIBLE_DEVICES to the same list (vLLM asserts when an
  inherited one disagrees), elsewhere an inherited HIP_VISIBLE_DEVICES is removed;
- VLLM_CACHE_ROOT (and TORCHINDUCTOR_CACHE_DIR inside it) per process: servers started together that share one
  compile cache race on it (VLLM_TORCH_COMPILE_CACHE_DIR, which this project used to set, is read by no vLLM);
- on ROCm, the seed's AITER settings, each only where the user has not exported it, under the name the installed
  vLLM reads (a user's value under the other release's name counts as exported);
- and it raises this process's open-files soft limit, which the child inherits: thousands of sockets per server.
"""
import os
import resource
import shutil
import socket
import subprocess
import sys
from pathlib import Path

# The seed's ROCm settings for MI300: AITER kernels on, with its unified attention and without its MHA.
# "unified" stands for the unified-attention switch, whose name depends on the vLLM release (vllm_flags.Features).
SEED_ROCM = (("VLLM_ROCM_USE_AITER", "1"), ("unified", "1"), ("VLLM_ROCM_USE_AITER_MHA", "0"))
UNIFIED_NAMES = ("VLLM_ROCM_USE_AITER_UNIFIED_ATTENTION", "VLLM_USE_AITER_UNIFIED_ATTENTION")
FAKE_GPUS = "REASONLITE_FAKE_GPUS"  # the preflight's stand-in for a GPU count (README demo, tests); nothing else
OPEN_FILES = 65536  # sockets of thousands of requests in flight, plus vLLM's own files


def detect_device(device="auto"):
    """The device kind of this machine: the configured one, else by the vendor tools present."""
    if device != "auto":
        return device
    if shutil.which("nvidia-smi"):
        return "cuda"
    if shutil.which("rocm-smi") or shutil.which("amd-smi") or os.path.exists("/dev/kfd"):
        return "rocm"
    return "cpu"


def gpu_count(device):
    """(number of GPUs the device ids of a config can name, how it was found); (0, why) when none.

    Counted without CUDA_VISIBLE_DEVICES/HIP_VISIBLE_DEVICES, which each process gets anew; ROCR_VISIBLE_DEVICES
    and cgroups (Slurm) do narrow it, as they narrow what the processes will see.
    """
    fake = os.environ.get(FAKE_GPUS, "").strip()
    if fake:
        if not fake.isdigit():
            raise ValueError(f"{FAKE_GPUS}={fake!r} must be a number of GPUs")
        return int(fake), f"faked by {FAKE_GPUS}"
    if device not in ("cuda", "rocm"):
        return 0, f"device {device}"
    env = {k: v for k, v in os.environ.items() if k not in ("CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES")}
    try:  # a child process: this one may never need torch, and an empty mask must not stick to it
        out = subprocess.run([sys.executable, "-c", "import torch; print(torch.cuda.device_count())"], env=env,
                             capture_output=True, text=True, timeout=120)
        return int(out.stdout.strip().splitlines()[-1]), "torch.cuda.device_count()"
    except (OSError, ValueError, IndexError, subprocess.TimeoutExpired) as e:
        return 0, f"torch could not count them ({type(e).__name__})"


def raise_open_files_limit(want=OPEN_FILES):
    """Raise the soft open-files limit toward `want` (never above the hard limit); returns (soft, hard) after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):  # a container may refuse; the preflight reports what is left
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def cache_dir(parent, key):
    """The cache folder of one vLLM process: <VLLM_CACHE_ROOT or parent>/<host>_<key>.

    The host is in the name because run folders often sit on a file system every node shares.
    """
    root = os.environ.get("VLLM_CACHE_ROOT") or parent
    return Path(root) / f"{socket.gethostname().split('.')[0]}_{key}"


def process_env(device, devices, cache, features, extra=None, base=None):
    """The whole environment of one vLLM process (see the module's docstring); `extra` (the config's vllm_env) wins.

    devices: the GPU ids it may use (None or [] for none); cache: its cache folder (cache_dir), or None;
    features: the installed vLLM's (vllm_flags.installed()); base: the environment to start from (os.environ).
    """
    base = dict(os.environ if base is None else base)
    env = dict(base)
    if device in ("cuda", "rocm") and devices:
        visible = ",".join(str(d) for d in devices)
        env["CUDA_VISIBLE_DEVICES"] = visible
        if device == "rocm":
            env["HIP_VISIBLE_DEVICES"] = visible
        else:
            env.pop("HIP_VISIBLE_DEVICES", None)
    if device == "rocm":
        for name, value in SEED_ROCM:
            names = (features.aiter_unified_attention,) + UNIFIED_NAMES if name == "unified" else (name,)
            exported = next((base[n] for n in names if n in base), None)
            env[names[0]] = exported if exported is not None else value
    if cache is not None:
        env["VLLM_CACHE_ROOT"] = str(cache)
        env["TORCHINDUCTOR_CACHE_DIR"] = str(Path(cache) / "inductor")
    env.update({k: str(v) for k, v in (extra or {}).items()})
    raise_open_files_limit()  # inherited by the child this environment is for
    return env


def env_changes(env, base=None):
    """({name: value} set or changed, [names removed]) of env against base (os.environ): what the preflight shows."""
    base = os.environ if base is None else base
    changed = {k: v for k, v in env.items() if base.get(k) != v}
    return changed, sorted(k for k in base if k not in env)


def main():
    device = detect_device()
    count, how = gpu_count(device)
    soft, hard = raise_open_files_limit()
    print(f"device {device}; {count} GPUs ({how}); open files {soft} (hard limit {hard})")


if __name__ == "__main__":
    main()

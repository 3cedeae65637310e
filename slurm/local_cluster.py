"""A real Slurm on this one machine, for trying the launchers of slurm/ and for their test: munged, slurmctld and two
slurmd daemons that play two nodes (n1, n2) on localhost, all in one state folder.

    python3 slurm/local_cluster.py start /tmp/slurm-local     # installs slurm-wlm + munge with apt if missing (root)
    export SLURM_CONF=/tmp/slurm-local/slurm.conf              # what `start` prints; sbatch, squeue, ... read it
    bash slurm/submit.sh generate config/demo.yaml --nodes 1 --clients-per-node 2
    python3 slurm/local_cluster.py stop /tmp/slurm-local       # stops exactly the daemons `start` recorded

Why it looks like this:
- Everything lives in the state folder (config, munge key and socket, spool, logs, pids), so it never touches
  /etc/slurm or a munged the machine may already run, and two copies can run side by side on different ports.
- Each daemon runs in the foreground (munged -F, slurmctld -D, slurmd -D) as a child we started, so we hold its pid
  and stop it by that pid alone, never by name. Before signalling a recorded pid, `stop` checks that the process
  still runs the program it recorded, so a pid reused by something else is left alone.
- Two slurmd on one host is Slurm's "multiple slurmd" setup (NodeHostname=localhost, one Port per node). Debian's
  build supports it; each "node" claims the machine's CPUs (config_overrides), so a job on both nodes gets its
  tasks on two nodes as on a cluster, with SLURM_NODEID 0 and 1. With --one-node the folder runs a single slurmd.
- proctrack/linuxproc and task/none: no cgroups, which a container seldom lets us use.

Only the Python standard library: the test imports LocalSlurm; the CLI runs under any python3.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from reasonlite.jsonl import pid_alive

PACKAGES = ["slurm-wlm", "munge"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def installed():
    return all(shutil.which(p) for p in ("munged", "slurmctld", "slurmd", "sbatch", "scontrol"))


def install(out=print):
    """apt-get the Debian packages if the programs are missing; raises RuntimeError saying why it could not."""
    if installed():
        return
    if not shutil.which("apt-get"):
        raise RuntimeError("Slurm is not installed and there is no apt-get to install it")
    if os.geteuid() != 0:
        raise RuntimeError("Slurm is not installed and installing it with apt-get needs root")
    out("installing " + " ".join(PACKAGES) + " with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES]):
        proc = subprocess.run(argv, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    # Debian's packages start their own munged/slurmd where a service manager runs; ours never use those.
    if not installed():
        raise RuntimeError("apt-get installed " + " ".join(PACKAGES) + " but the Slurm programs are still missing")


def version():
    proc = subprocess.run(["slurmd", "-V"], capture_output=True, text=True)
    return proc.stdout.strip() or proc.stderr.strip()


def slurm_conf(state, nodes, cpus, ctld_port, node_ports, munge_socket):
    """A minimal slurm.conf: no accounting, no cgroups, one partition over every node."""
    lines = [
        "# Written by slurm/local_cluster.py: a one-machine Slurm for the launchers in slurm/.",
        "ClusterName=reasonlite",
        "SlurmctldHost=localhost",
        f"SlurmctldPort={ctld_port}",
        "SlurmUser=root",
        "SlurmdUser=root",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        f"AuthInfo=socket={munge_socket}",
        f"StateSaveLocation={state}/ctld",
        f"SlurmdSpoolDir={state}/spool/%n",
        f"SlurmctldPidFile={state}/run/slurmctld.pid",
        f"SlurmdPidFile={state}/run/slurmd-%n.pid",
        f"SlurmctldLogFile={state}/log/slurmctld.log",
        f"SlurmdLogFile={state}/log/slurmd-%n.log",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "MpiDefault=none",
        "SwitchType=switch/none",
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        "SchedulerType=sched/backfill",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_CPU",
        "ReturnToService=2",
        # Both slurmd claim the machine's CPUs; without this the second one would be drained for "Low CPUs".
        "SlurmdParameters=config_overrides",
        # Seconds between SIGTERM and SIGKILL when a job is cancelled: the launchers stop their servers in it.
        "KillWait=30",
        "SlurmdTimeout=60",
        "InactiveLimit=0",
        "MinJobAge=300",
    ]
    for name, port in zip(nodes, node_ports):
        lines.append(f"NodeName={name} NodeHostname=localhost NodeAddr=127.0.0.1 Port={port} CPUs={cpus} "
                     "RealMemory=1 State=UNKNOWN")
    lines.append(f"PartitionName=local Nodes={','.join(nodes)} Default=YES MaxTime=INFINITE State=UP")
    return "\n".join(lines) + "\n"


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return None


class LocalSlurm:
    """munged + slurmctld + slurmd(s) in `state`; start() returns once every node is idle, stop() ends them."""

    def __init__(self, state, nodes=("n1", "n2"), cpus=None, out=print):
        self.state = Path(state).resolve()
        self.nodes = list(nodes)
        self.cpus = cpus or os.cpu_count() or 1
        self.out = out
        self.conf = self.state / "slurm.conf"
        self.procs = {}  # name -> Popen, for the daemons this object started

    @property
    def env(self):
        """The environment for sbatch, squeue, scancel, ...: the only thing they need is where slurm.conf is."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def _spawn(self, name, argv):
        log = open(self.state / "log" / f"{name}.out", "ab")
        # Its own session: a Ctrl-C in the terminal that started the cluster does not reach the daemons.
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        log.close()
        self.procs[name] = proc
        self._save_pids()
        return proc

    def _save_pids(self):
        data = {name: {"pid": p.pid, "argv0": p.args[0]} for name, p in self.procs.items()}
        (self.state / "run" / "daemons.json").write_text(json.dumps(data, indent=1))

    def start(self, timeout=60):
        for sub in ("ctld", "spool", "run", "log", "munge"):
            (self.state / sub).mkdir(parents=True, exist_ok=True)
        for node in self.nodes:
            (self.state / "spool" / node).mkdir(exist_ok=True)
        os.chmod(self.state / "munge", 0o700)  # munged refuses a socket folder others can write to
        key = self.state / "munge" / "munge.key"
        if not key.exists():
            key.write_bytes(os.urandom(1024))
        os.chmod(key, 0o400)
        socket_path = self.state / "munge" / "munge.socket"
        ctld_port = free_port()
        node_ports = [free_port() for _ in self.nodes]
        self.conf.write_text(slurm_conf(self.state, self.nodes, self.cpus, ctld_port, node_ports, socket_path))
        try:
            self._spawn("munged", ["munged", "--foreground", "--force", f"--socket={socket_path}",
                                   f"--key-file={key}", f"--pid-file={self.state}/run/munged.pid",
                                   f"--log-file={self.state}/log/munged.log",
                                   f"--seed-file={self.state}/munge/munged.seed"])
            self._wait(lambda: socket_path.exists(), "munged to open its socket", timeout, "munged")
            self._spawn("slurmctld", ["slurmctld", "-D", "-f", str(self.conf)])
            self._wait(self._ctld_up, "slurmctld to answer", timeout, "slurmctld")
            for node in self.nodes:
                self._spawn(f"slurmd-{node}", ["slurmd", "-D", "-f", str(self.conf), "-N", node])
            self._wait(self._nodes_idle, f"nodes {','.join(self.nodes)} to be idle", timeout)
        except BaseException:
            self.stop()
            raise
        self.out(f"Slurm is up ({version()}): nodes {', '.join(self.nodes)} with {self.cpus} CPUs each, "
                 f"partition 'local'")
        return self

    def _scontrol(self, *args):
        return subprocess.run(["scontrol", *args], env=self.env, capture_output=True, text=True, timeout=20)

    def _ctld_up(self):
        return self._scontrol("ping").stdout.find("UP") >= 0

    def _nodes_idle(self):
        proc = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %t"], env=self.env, capture_output=True, text=True,
                              timeout=20)
        states = dict(line.split() for line in proc.stdout.splitlines() if line.strip())
        return all(states.get(n, "").rstrip("*") == "idle" for n in self.nodes)

    def _wait(self, ready, what, timeout, daemon=None):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [n for n, p in self.procs.items() if p.poll() is not None]
            if dead:
                raise RuntimeError(f"{', '.join(dead)} exited while waiting for {what}; see {self.state}/log/")
            if ready():
                return
            time.sleep(0.5)
        raise RuntimeError(f"timed out after {timeout} s waiting for {what}; see {self.state}/log/")

    def stop(self, grace=15):
        """SIGTERM the daemons this object started (slurmd first, munged last), SIGKILL any left after `grace` s."""
        order = [n for n in self.procs if n.startswith("slurmd")] + \
                [n for n in ("slurmctld", "munged") if n in self.procs]
        for name in order:
            proc = self.procs[name]
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(grace)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.procs = {}
        self._save_pids()


def stop_recorded(state, out=print, grace=15):
    """Stop the daemons a `start` in another process recorded in state/run/daemons.json, by their pids."""
    path = Path(state) / "run" / "daemons.json"
    if not path.exists():
        out(f"no daemons recorded in {path}")
        return
    recorded = json.loads(path.read_text())
    order = sorted(recorded, key=lambda n: (0 if n.startswith("slurmd") else 1 if n == "slurmctld" else 2))
    for name in order:
        pid, argv0 = recorded[name]["pid"], recorded[name]["argv0"]
        cmd = _cmdline(pid)
        if not pid_alive(pid) or not cmd or os.path.basename(cmd[0].decode(errors="replace")) != argv0:
            out(f"{name} (pid {pid}) is not running")
            continue
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
        out(f"stopped {name} (pid {pid})")
    path.write_text("{}")


def main():
    parser = argparse.ArgumentParser(description="Start or stop a one-machine Slurm in a state folder.")
    parser.add_argument("action", choices=["start", "stop", "version"])
    parser.add_argument("state", nargs="?", help="the state folder (start: created if missing)")
    parser.add_argument("--one-node", action="store_true", help="one slurmd (node n1) instead of two")
    parser.add_argument("--cpus", type=int, help="CPUs per node (default: this machine's)")
    args = parser.parse_args()
    try:
        if args.action == "version":
            install()
            print(version())
        elif not args.state:
            parser.error(f"{args.action} needs the state folder")
        elif args.action == "start":
            install()
            cluster = LocalSlurm(args.state, nodes=["n1"] if args.one_node else ["n1", "n2"], cpus=args.cpus)
            cluster.start()
            # The daemons keep running after this process exits; `stop` finds them in daemons.json.
            for proc in cluster.procs.values():
                proc.returncode = 0  # tell Popen's finalizer not to wait for them
            print(f"export SLURM_CONF={cluster.conf}")
            print(f"stop it with: python3 {sys.argv[0]} stop {cluster.state}")
        else:
            stop_recorded(args.state)
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()

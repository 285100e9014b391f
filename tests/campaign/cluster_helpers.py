"""Real servers for the fault tests of a campaign on a cluster: PostgreSQL, SLURM (with munge),
``dask scheduler`` and ``dask worker`` processes, each started as its own process in a temporary
folder on loopback; and two test stages that workers import.

A missing server program skips a test with the package to install, except under ``CI=true``,
where it fails: CI installs the packages (``.ci/run``), so a skip there would hide a lost check.
"""

import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest


# -- test stages (run on the workers) -----------------------------------------------------------
def hold_first(ctx) -> None:
    """Test stage: the first attempt to get here of the sample with index ``GLASSFRAC_TEST_HOLD_INDEX``
    (any sample if unset) writes ``{sample_id, pid, host, directory}`` to the file named by
    ``GLASSFRAC_TEST_HOLD`` and then waits 600 s (to be killed); every other attempt passes at once."""
    marker = os.environ.get("GLASSFRAC_TEST_HOLD")
    index = os.environ.get("GLASSFRAC_TEST_HOLD_INDEX")
    if not marker or (index is not None and int(index) != ctx.spec.index):
        return
    try:
        fd = os.open(marker + ".claim", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.close(fd)
    record = {"sample_id": ctx.spec.sample_id, "pid": os.getpid(), "host": socket.gethostname(),
              "directory": str(ctx.directory)}
    Path(marker + ".part").write_text(json.dumps(record))
    os.replace(marker + ".part", marker)
    time.sleep(600)


def record_job(ctx) -> None:
    """Test stage: the SLURM job id and the worker's process id as labels of the sample."""
    ctx.keys["slurm_job_id"] = int(os.environ.get("SLURM_JOB_ID", "-1"))
    ctx.keys["worker_pid"] = os.getpid()


# -- helpers ------------------------------------------------------------------------------------
def missing(reason: str):
    """Skip (fail under CI=true) because a program the test needs is not installed."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI installs it: .ci/run)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_dir(name: str, tmp_path: Path) -> Path:
    """Folder for a test's logs: ``$GLASSFRAC_CLUSTER_LOGS/<name>`` if set (kept), else in ``tmp_path``."""
    root = os.environ.get("GLASSFRAC_CLUSTER_LOGS")
    out = Path(root) / name if root else tmp_path / "logs"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    return out


def spawn(cmd, log: Path, env=None) -> subprocess.Popen:
    """Start ``cmd`` in its own process group, stdout and stderr to ``log``."""
    with open(log, "ab") as handle:
        return subprocess.Popen([str(c) for c in cmd], stdout=handle, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)


def stop(proc: subprocess.Popen, sig=signal.SIGTERM, timeout: float = 20.0) -> None:
    """Signal the process group of ``proc`` (that we started) and wait; SIGKILL if it lingers."""
    if proc.poll() is None:
        with _gone():
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with _gone():
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout)


class _gone:
    """Ignore ProcessLookupError (the process group already ended)."""

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        return kind is ProcessLookupError


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    """Poll ``predicate()`` until it returns a true value (returned); fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def glassfrac_cmd(*args) -> list:
    """The ``glassfrac`` command line of this interpreter."""
    return [sys.executable, "-c", "import sys; from glassfrac.cli import main; sys.exit(main())", *map(str, args)]


# -- PostgreSQL --------------------------------------------------------------------------------
def _pg_binary(name):
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


class PostgresServer:
    """A PostgreSQL server of our own in ``root`` (loopback, trust auth, database ``campaigns``);
    run as the ``postgres`` user when we are root (the server refuses root)."""

    def __init__(self, root: Path):
        try:
            import psycopg2  # noqa: F401
        except ImportError:
            missing("psycopg2 missing: pip install 'glassfrac[postgres]'")
        self.initdb, self.pg_ctl = _pg_binary("initdb"), _pg_binary("pg_ctl")
        if not (self.initdb and self.pg_ctl):
            missing("PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql")
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.prefix = []
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                missing("running as root and no 'postgres' user to run the server as")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self.prefix = ["runuser", "-u", "postgres", "--"]
        self.port = free_port()
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        subprocess.run(self.prefix + [self.initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust",
                                      "-E", "UTF8", "--no-sync"], check=True, capture_output=True)
        self.start()
        con = self.connect("postgres")
        con.autocommit = True
        con.cursor().execute("CREATE DATABASE campaigns")
        con.close()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/campaigns"

    def connect(self, dbname="campaigns"):
        import psycopg2

        return psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname=dbname,
                                connect_timeout=5)

    def start(self) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off"
        subprocess.run(self.prefix + [self.pg_ctl, "-D", str(self.data), "-o", options, "-l", str(self.log),
                                      "-w", "start"], check=True, capture_output=True)

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop -m mode``: fast (sessions ended, clean) or immediate (as a crash)."""
        subprocess.run(self.prefix + [self.pg_ctl, "-D", str(self.data), "-m", mode, "-w", "stop"],
                       capture_output=True)

    def rows(self, campaign: str) -> int:
        """Rows of ``campaign`` in the ASE tables (0 while they do not exist or the server is down)."""
        import psycopg2

        try:
            con = self.connect()
        except psycopg2.OperationalError:
            return 0
        try:
            cur = con.cursor()
            cur.execute("SELECT count(*) FROM text_key_values WHERE key = 'campaign' AND value = %s", (campaign,))
            return cur.fetchone()[0]
        except psycopg2.Error:
            return 0
        finally:
            con.close()


# -- SLURM ---------------------------------------------------------------------------------------
SLURM_PROGRAMS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scancel")


class SlurmCluster:
    """A single-node SLURM cluster of our own: munged, slurmctld and slurmd in ``root``, configured
    by ``root/slurm.conf`` (loopback, free ports, no cgroups, no accounting); runs as root."""

    def __init__(self, root: Path, logs: Path):
        absent = [p for p in SLURM_PROGRAMS if not shutil.which(p)]
        if absent:
            missing(f"SLURM or munge programs not found ({', '.join(absent)}): apt-get install slurm-wlm munge")
        if os.geteuid() != 0:
            missing("a test SLURM cluster runs its daemons as root")
        self.root, self.logs = Path(root), Path(logs)
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)  # munged checks the socket's folder
        self.conf = self.root / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self.procs = []

    def __enter__(self):
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _start(self) -> None:
        root = self.root
        key, socket_path = root / "munge.key", root / "munge.sock"
        subprocess.run(["mungekey", "--create", "--keyfile", str(key)], check=True, capture_output=True)
        self.procs.append(spawn(["munged", "--foreground", "--force", f"--socket={socket_path}",
                                 f"--key-file={key}", f"--pid-file={root / 'munged.pid'}",
                                 f"--seed-file={root / 'munged.seed'}", f"--log-file={self.logs / 'munged.log'}"],
                                self.logs / "munged.out"))
        wait_for(socket_path.exists, 20, "munged's socket")
        node = subprocess.run(["slurmd", "-C"], check=True, capture_output=True, text=True).stdout.splitlines()[0]
        name = node.split()[0].split("=", 1)[1]
        (root / "state").mkdir()
        (root / "spool").mkdir()
        self.conf.write_text("\n".join([
            "ClusterName=glassfractest",
            f"SlurmctldHost={name}(127.0.0.1)",
            f"SlurmctldPort={free_port()}",
            f"SlurmdPort={free_port()}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={socket_path}",
            f"StateSaveLocation={root / 'state'}",
            f"SlurmdSpoolDir={root / 'spool'}",
            f"SlurmctldPidFile={root / 'slurmctld.pid'}",
            f"SlurmdPidFile={root / 'slurmd.pid'}",
            f"SlurmctldLogFile={self.logs / 'slurmctld.log'}",
            f"SlurmdLogFile={self.logs / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            "MpiDefault=none",
            "ReturnToService=2",
            f"{node} NodeAddr=127.0.0.1 State=UNKNOWN",
            f"PartitionName=test Nodes={name} Default=YES MaxTime=INFINITE State=UP",
            "",
        ]))
        self.procs.append(spawn(["slurmctld", "-D", "-i"], self.logs / "slurmctld.out", self.env))
        self.procs.append(spawn(["slurmd", "-D", "-N", name], self.logs / "slurmd.out", self.env))
        wait_for(lambda: "idle" in self.run("sinfo", "--noheader", "-o", "%T", check=False), 60,
                 "the SLURM node to be idle", interval=0.5)

    def run(self, *args, check=True) -> str:
        out = subprocess.run(list(args), capture_output=True, text=True, env=self.env, check=check)
        return out.stdout

    def __exit__(self, *exc):
        if self.conf.exists():
            subprocess.run(["scancel", "--full", "--user", "root"], capture_output=True, env=self.env)
        for proc in reversed(self.procs):
            stop(proc)
        self.procs.clear()

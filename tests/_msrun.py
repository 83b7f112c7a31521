"""Launching MindSpore's `msrun` from tests: a free port, this virtualenv first on PATH, a bounded run time."""

import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Dict, Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_msrun(
    script: os.PathLike,
    script_args: Sequence[str] = (),
    *,
    log_dir: os.PathLike,
    workers: int = 2,
    timeout: float = 300,
    env: Optional[Dict[str, str]] = None,
) -> subprocess.CompletedProcess:
    """Runs `script` on `workers` CPU workers with msrun on loopback and returns msrun's exit code and output.

    msrun starts `python` from PATH, so this interpreter's bin folder goes first. If the job is still running
    after `timeout` seconds, msrun and its workers (one process group) are killed and the test fails, so a
    hang can never block CI.
    """
    env = dict(os.environ, **(env or {}))
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env["PATH"]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["GLOG_v"] = "3"
    command = [
        shutil.which("msrun", path=env["PATH"]), f"--worker_num={workers}", f"--local_worker_num={workers}",
        "--master_addr=127.0.0.1", f"--master_port={free_port()}", f"--log_dir={log_dir}", "--join=True",
        "--cluster_time_out=120", str(script), *map(str, script_args),
    ]
    # The working directory is the log folder's parent: MindSpore writes compile dumps (rank_0/...) there.
    process = subprocess.Popen(command, cwd=Path(log_dir).parent, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # msrun and every worker it started
        output, _ = process.communicate()
        tails = "\n".join(f"--- worker {rank}:\n{text[-2000:]}" for rank, text in worker_logs(log_dir).items())
        raise AssertionError(f"msrun ran longer than {timeout} s and was killed.\n{output[-2000:]}\n{tails}")
    return subprocess.CompletedProcess(command, process.returncode, output)


def worker_logs(log_dir: os.PathLike) -> Dict[int, str]:
    """`{rank: text of worker_<rank>.log}` from msrun's log folder."""
    logs = sorted(Path(log_dir).glob("worker_*.log"))
    return {int(log.stem.split("_")[1]): log.read_text(errors="replace") for log in logs}

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


def launch_msrun(
    script: os.PathLike,
    script_args: Sequence[str] = (),
    *,
    log_dir: os.PathLike,
    workers: int = 2,
    local_workers: Optional[int] = None,
    node_rank: int = 0,
    master_port: Optional[int] = None,
    join: bool = True,
    env: Optional[Dict[str, str]] = None,
) -> subprocess.Popen:
    """Starts msrun for `script` on loopback (in its own process group) and returns it without waiting.

    `local_workers` (default: all `workers`) and `node_rank` make it one node of a job with several; every node
    must get the same `master_port`. msrun starts `python` from PATH, so this interpreter's bin folder goes first.
    """
    env = dict(os.environ, **(env or {}))
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env["PATH"]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["GLOG_v"] = "3"
    command = [
        shutil.which("msrun", path=env["PATH"]), f"--worker_num={workers}",
        f"--local_worker_num={workers if local_workers is None else local_workers}", f"--node_rank={node_rank}",
        "--master_addr=127.0.0.1", f"--master_port={master_port or free_port()}", f"--log_dir={log_dir}",
        f"--join={join}", "--cluster_time_out=120", str(script), *map(str, script_args),
    ]
    # The working directory is the log folder's parent: MindSpore writes compile dumps (rank_0/...) there.
    return subprocess.Popen(command, cwd=Path(log_dir).parent, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def kill_group(process: subprocess.Popen) -> None:
    """Kills msrun and every worker it started (its process group), if any is still running."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


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

    If the job is still running after `timeout` seconds, msrun and its workers (one process group) are killed
    and the test fails, so a hang can never block CI.
    """
    process = launch_msrun(script, script_args, log_dir=log_dir, workers=workers, env=env)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(process)
        output, _ = process.communicate()
        tails = "\n".join(f"--- worker {rank}:\n{text[-2000:]}" for rank, text in worker_logs(log_dir).items())
        raise AssertionError(f"msrun ran longer than {timeout} s and was killed.\n{output[-2000:]}\n{tails}")
    return subprocess.CompletedProcess(process.args, process.returncode, output)


def worker_logs(log_dir: os.PathLike) -> Dict[int, str]:
    """`{rank: text of worker_<rank>.log}` from msrun's log folder."""
    logs = sorted(Path(log_dir).glob("worker_*.log"))
    return {int(log.stem.split("_")[1]): log.read_text(errors="replace") for log in logs}


# How far the parameters that `parameters_compared_across_reductions` names may end apart. Their gradients differ
# between two reductions by rounding only, which Adam's normalisation makes up to ~1e-5 where a gradient is tiny
# (the tests train at lr 1e-2). 1e-4 is 1% of one step: a missing or wrong reduction moves them by steps of ~lr.
ACROSS_REDUCTIONS_ATOL = 1e-4


def parameters_compared_across_reductions(params) -> list:
    """The parameter names that data-parallel tests compare between two ways of reducing gradients: all but the
    attention key biases (exactly 2 in the tests' tiny 2-layer BERT). Their true gradient is exactly zero (softmax
    ignores a shift of all scores of a query), so their gradients are rounding noise, which differs with the
    reduction (one batch, all-reduce, reduce-scatter) and which Adam's normalisation turns into full-size steps."""
    compared = [name for name in params if not name.endswith("attention.self.key.bias")]
    assert len(compared) == len(params) - 2
    return compared

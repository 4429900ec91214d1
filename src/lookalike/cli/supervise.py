"""Run a child server (Streamlit) so that stopping the launcher always stops it too.

The child runs in its own process group; SIGTERM, SIGINT and SIGHUP to the launcher are
forwarded to that whole group, which then gets ``grace`` seconds before SIGKILL. On Linux the
child also asks the kernel for SIGTERM if the launcher dies without a word (SIGKILL, crash), so
no server is left holding the port under a supervisor (systemd, docker, a closed terminal).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """PR_SET_PDEATHSIG: SIGTERM this process when its parent thread exits (Linux only)."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG


def stop_group(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, grace: float = 4.0) -> int:
    """Send ``sig`` to the child's process group, wait up to ``grace`` s, then SIGKILL it."""
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass
    try:
        return process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return process.wait()


def run_child(command: Sequence[str], grace: float = 4.0) -> int:
    """Run ``command`` until it exits or the launcher is told to stop; returns its exit code
    (0 when stopped by a signal)."""
    process = subprocess.Popen(list(command), start_new_session=True, preexec_fn=_die_with_parent)
    stopping: list[int] = []

    def forward(signum: int, _: FrameType | None) -> None:
        stopping.append(signum)

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED}
    try:
        while process.poll() is None and not stopping:
            time.sleep(0.1)
        if stopping:
            stop_group(process, signal.SIGTERM, grace)
            return 0
        return process.returncode
    finally:
        if process.poll() is None:  # an unexpected exception in the launcher
            stop_group(process, signal.SIGTERM, grace)
        for sig, handler in previous.items():
            signal.signal(sig, handler)

"""What tests wait on: free loopback ports, a condition polled until it holds (never a bare sleep), a
child stopped."""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def free_ports(count: int) -> list[int]:
    """Ports the kernel hands out for port 0 on 127.0.0.1, all held open until all are chosen."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port() -> int:
    """One free port on 127.0.0.1."""
    return free_ports(1)[0]


def wait_for(
    what: str,
    check: Callable[[], T],
    *,
    timeout: float,
    poll: float = 0.1,
    process: subprocess.Popen[Any] | None = None,
    diagnose: Callable[[], str] = lambda: "",
) -> T:
    """Poll ``check`` until it returns something truthy, and return that.

    Fails (``AssertionError`` naming ``what``, with ``diagnose()``) after ``timeout`` seconds, or as soon as
    ``process`` (the child the condition depends on) has exited.
    """
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        result = check()
        if result:
            return result
        if process is not None and process.poll() is not None:
            raise AssertionError(f"exited with {process.returncode} while waiting for {what}\n{diagnose()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{diagnose()}")
        pause.wait(poll)


def stop(process: subprocess.Popen[str], *, timeout: float = 60.0) -> tuple[str, str]:
    """Stop a child as a service manager does: SIGTERM, then SIGKILL if it is not gone after ``timeout``.

    Returns its (stdout, stderr), ``""`` for a stream not piped; its pipes are closed and it is reaped.
    """
    process.send_signal(signal.SIGTERM)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
    return out or "", err or ""

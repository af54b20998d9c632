"""Servers of the tests' own, on loopback, with nothing but the standard library (bench/ uses them too)."""

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

REDIS_SERVER = shutil.which("redis-server")


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OwnRedis:
    """A redis-server of its own on a free port (never the machine's shared one), started and killed at will.

    `keeps_data`: an append-only file written at every command, as production Redis usually runs;
    without it a restart loses every waiting message.
    """

    def __init__(self, folder: Path, *, keeps_data: bool = False, port: int | None = None):
        self.port, self.folder, self.process = port or free_port(), folder, None
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.persistence = ["--appendonly", "yes", "--appendfsync", "always"] if keeps_data else ["--appendonly", "no"]

    def start(self, timeout: float = 10) -> float:
        """Start it and wait until it answers; returns when it did (Unix time)."""
        argv = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", *self.persistence]
        self.process = subprocess.Popen(argv, cwd=self.folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not self.answers():
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {self.port} did not answer within {timeout} s")
            time.sleep(0.01)
        return time.time()

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

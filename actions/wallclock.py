"""One outbound HTTP call bounded by a wall-clock deadline, and the record of whether its request was
written whole: shared by every client that calls outside (Nexthink, the service desk).

urllib3's timeouts bound each wait on the socket, not the whole call: a server that trickles one
byte at a time could hold a worker thread for ever. Every socket a call uses is registered with
the call's Deadline, which shuts it down when the time is up. The Deadline is the one object per
call that the connection can reach (through `_current`), so it also records whether the request
was written whole: what decides whether a failed call may be sent again.
"""

from __future__ import annotations

import contextlib
import socket
import threading

import requests
import requests.adapters
import urllib3.connection
import urllib3.connectionpool

_current = threading.local()


class Deadline:
    def __init__(self, seconds: float):
        self.seconds = seconds
        self.expired = False
        self.request_written = False  # every byte of the request, body included, went to the socket
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> Deadline:
        _current.deadline = self
        self._timer.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._timer.cancel()
        _current.deadline = None

    def watch(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            if self.expired:
                _shut(sock)
            else:
                self._sockets.append(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed
        sock.shutdown(socket.SHUT_RDWR)


class _WatchedConnectionMixin(urllib3.connection.HTTPConnection):
    def request(self, *args, **kwargs):
        # urllib3's HTTPConnection.request returns once the request line, headers and whole body were
        # handed to the socket; it raises if any of it could not be. (getresponse() alone would not
        # do: the pool swallows a broken pipe or a reset while sending and asks for the answer anyway.)
        super().request(*args, **kwargs)
        deadline = getattr(_current, "deadline", None)
        if deadline is not None:
            deadline.request_written = True

    def getresponse(self, *args, **kwargs):
        deadline = getattr(_current, "deadline", None)
        if deadline is not None:
            deadline.watch(self.sock)
        return super().getresponse(*args, **kwargs)


class _HTTPConnection(_WatchedConnectionMixin, urllib3.connection.HTTPConnection):
    pass


class _HTTPSConnection(_WatchedConnectionMixin, urllib3.connection.HTTPSConnection):
    pass


class _HTTPPool(urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class _WatchedAdapter(requests.adapters.HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


def new_session() -> requests.Session:
    session = requests.Session()
    adapter = _WatchedAdapter(max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session

"""A TCP proxy that a test can cut and restore, to play a database outage.

`cut("refuse")` drops every connection and closes new ones at once (a server that went
away); `cut("blackhole")` drops them and then holds new ones without an answer (a network
that swallows packets, the case only timeouts end); `hold()` keeps every connection open but
forwards nothing more (a server or a network that stops answering). `restore()` forwards
again.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time
from typing import Literal

Mode = Literal["refuse", "blackhole"]


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._mode: Mode | None = None
        self._holding = threading.Event()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._closed = False
        threading.Thread(target=self._accept, name="tcp-proxy", daemon=True).start()

    def cut(self, mode: Mode = "refuse") -> None:
        with self._lock:
            self._mode = mode
            for s in self._sockets:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self._sockets.clear()

    def hold(self) -> None:
        self._holding.set()

    def restore(self) -> None:
        with self._lock:
            self._mode = None
        self._holding.clear()

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                mode = self._mode
                if mode == "refuse":
                    client.close()
                    continue
                self._sockets.add(client)
            if mode == "blackhole":
                continue  # held, never answered, until the next cut drops it
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                self._drop(client)
                continue
            with self._lock:
                self._sockets.add(upstream)
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        selector = selectors.DefaultSelector()
        selector.register(a, selectors.EVENT_READ, b)
        selector.register(b, selectors.EVENT_READ, a)
        try:
            while True:
                if self._holding.is_set():  # open, silent
                    time.sleep(0.05)
                    continue
                for key, _ in selector.select(timeout=0.1):
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    if not data:
                        return
                    key.data.sendall(data)
        except (OSError, ValueError):
            return
        finally:
            selector.close()
            self._drop(a)
            self._drop(b)

    def _drop(self, s: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(s)
        s.close()

"""Real TCP servers for fault tests: one that never answers, one that forwards and can go down."""

import contextlib
import socket
import threading


class _Listener:
    """Accepts connections on a port of 127.0.0.1 in a thread, until closed."""

    def __init__(self, port: int = 0) -> None:
        self._socket = socket.create_server(("127.0.0.1", port))
        self.port = self._socket.getsockname()[1]
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._socket.accept()
            except OSError:  # closed
                return
            self.connections.append(client)
            self.on_connection(client)

    def on_connection(self, client: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Stop listening (the port is then refused) and drop every open connection."""
        for sock in [self._socket, *self.connections]:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


class SilentServer(_Listener):
    """Accepts, reads every request, never answers: an SES that hangs. Counts the requests."""

    def __init__(self, marker: bytes) -> None:
        self._marker = marker
        self._counts: dict[int, int] = {}
        self._arrived = threading.Condition()
        super().__init__()
        self.url = f"http://127.0.0.1:{self.port}"

    def on_connection(self, client: socket.socket) -> None:
        threading.Thread(target=self._read, args=(client,), daemon=True).start()

    def _read(self, client: socket.socket) -> None:
        received = b""
        while True:
            try:
                chunk = client.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            received += chunk
            with self._arrived:
                self._counts[id(client)] = received.count(self._marker)
                self._arrived.notify_all()

    @property
    def requests(self) -> int:
        return sum(self._counts.values())

    def wait_for_requests(self, count: int, timeout: float = 10) -> int:
        """Wait until `count` requests have arrived (or the timeout); return how many did."""
        with self._arrived:
            self._arrived.wait_for(lambda: self.requests >= count, timeout)
        return self.requests


class Forwarder(_Listener):
    """A port forwarded to another (a broker): close() is an outage, Forwarder(port) its end."""

    def __init__(self, upstream_port: int, port: int = 0) -> None:
        self._upstream_port = upstream_port
        super().__init__(port)

    def on_connection(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self._upstream_port))
        self.connections.append(upstream)
        for source, target in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        while True:
            try:
                chunk = source.recv(65536)
                if not chunk:
                    break
                target.sendall(chunk)
            except OSError:
                break
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

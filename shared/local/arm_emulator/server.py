"""The HTTP side: a ThreadingHTTPServer on 127.0.0.1 that turns each request into a `Request`,
hands it to the application callable and writes the `Response` back (keep-alive, JSON bodies).
"""

from __future__ import annotations

import socket
import sys
import threading
import traceback
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

from shared.local.arm_emulator.wire import Request, Response

App = Callable[[Request], Response]


class EmulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    # The default listen backlog of 5 overflows when a client opens many connections at once
    # (a `plan` with many workers): a dropped handshake is retried only after ~1 s (measured:
    # 32 workers stalled ~1 s in most runs with 5, never with 128).
    request_queue_size = 128

    def __init__(self, port: int, app: App):
        super().__init__(("127.0.0.1", port), _Handler)
        self.app = app
        self.base_url = f"http://127.0.0.1:{self.server_address[1]}"
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        # A short poll interval keeps `stop()` quick: shutdown waits for the loop to notice.
        self._thread = threading.Thread(target=self.serve_forever, args=(0.02,), name="arm-emulator", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close every open keep-alive connection, so no socket outlives the server."""
        self.shutdown()
        with self._connections_lock:
            for connection in list(self._connections):
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self.server_close()
        self._thread.join()

    def track(self, connection: socket.socket, is_open: bool) -> None:
        with self._connections_lock:
            (self._connections.add if is_open else self._connections.discard)(connection)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: EmulatorServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: without NODELAY each answer waits for a delayed ACK.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def do_GET(self) -> None:
        self._serve()

    do_PUT = do_POST = do_DELETE = do_PATCH = do_HEAD = do_GET

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        """Quiet: tests and the demo read the recorded requests instead."""

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        request = Request(
            method=self.command,
            path=unquote(parts.path),
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers=self.headers,
            body=self.rfile.read(length) if length else b"",
            base_url=self.server.base_url,
        )
        try:
            response = self.server.app(request)
        except Exception as error:  # an emulator bug must still answer, as ARM would with a 500
            traceback.print_exc(file=sys.stderr)
            message = f"ARM emulator error: {type(error).__name__}: {error}"
            response = Response(500, {"error": {"code": "InternalServerError", "message": message}})
        self._send(response)

    def _send(self, response: Response) -> None:
        payload = response.encoded()
        self.send_response(response.status)
        self.send_header("x-ms-request-id", str(uuid.uuid4()))
        for name, value in response.headers.items():
            self.send_header(name, value)
        if payload:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload and self.command != "HEAD":
            self.wfile.write(payload)

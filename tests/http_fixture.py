"""A local HTTP server with misbehaving routes, for testing the downloader offline.

Why: the downloader's value is in how it handles bad servers (404, truncated bodies,
ignored Range headers, wrong bytes), which real hosts cannot be made to do on demand.
The server binds 127.0.0.1 on an ephemeral port and records every request it sees.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    body: bytes = b""
    mode: str = "file"  # file | truncate | 404 | html | stall | trickle
    ranges: bool = True  # honour Range requests with 206
    truncate_times: int = -1  # truncate only the first N requests (-1: always)
    stall_s: float = 2.0
    trickle_bytes: int = 1024  # trickle: this many bytes every trickle_every_s seconds
    trickle_every_s: float = 2.0
    hits: int = 0


@dataclass
class Request:
    path: str
    range: str | None
    bytes_sent: int = 0


@dataclass
class FixtureServer:
    """``add(path, body, mode=...)`` then ``url(path)``; ``requests`` lists what was asked."""

    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, path: str, body: bytes = b"", **kw) -> str:
        self.routes[path] = Route(body=body, **kw)
        return self.url(path)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def hits(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    def __enter__(self) -> FixtureServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):  # noqa: N802 - http.server naming
                req = Request(self.path, self.headers.get("Range"))
                with server.lock:
                    server.requests.append(req)
                    route = server.routes.get(self.path)
                    if route is not None:
                        route.hits += 1
                if route is None or route.mode == "404":
                    self.send_error(404, "Not Found")
                    return
                if route.mode == "html":
                    page = b"<html><body>Please confirm the download</body></html>"
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html; charset=utf-8")
                    self.send_header("Content-Length", str(len(page)))
                    self.end_headers()
                    self.wfile.write(page)
                    return
                if route.mode == "stall":
                    time.sleep(route.stall_s)
                    return
                body, start = route.body, 0
                truncating = route.mode == "truncate" and (
                    route.truncate_times < 0 or route.hits <= route.truncate_times
                )
                if req.range and route.ranges and not truncating:
                    start = int(req.range.split("=")[1].split("-")[0])
                    if start >= len(body):
                        self.send_error(416, "Range Not Satisfiable")
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                if route.ranges:
                    self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                payload = body[start:]
                if route.mode == "trickle":  # a live but hopelessly slow server
                    try:
                        for i in range(0, len(payload), route.trickle_bytes):
                            self.wfile.write(payload[i : i + route.trickle_bytes])
                            self.wfile.flush()
                            req.bytes_sent += len(payload[i : i + route.trickle_bytes])
                            time.sleep(route.trickle_every_s)
                    except OSError:  # the client gave up: what the test wants
                        pass
                    return
                if truncating:  # declare the full length, send half, then hang up
                    payload = payload[: len(payload) // 2]
                    self.close_connection = True
                self.wfile.write(payload)
                self.wfile.flush()
                req.bytes_sent = len(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def closed_port_url(path: str = "/file.bin") -> str:
    """A URL on 127.0.0.1 where nothing listens: connection refused."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}{path}"

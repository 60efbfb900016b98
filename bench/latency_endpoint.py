"""A DynamoDB endpoint that only waits: every request is answered after a fixed delay, with the smallest
valid answer of its operation (nothing is stored), so an ingest run measures the client under a network
round trip of that length, not the emulator.

It runs in a child process: answering in the benchmark's own process would take the GIL from the code
under test. Bound to 127.0.0.1 on a free port; HTTP/1.1 keep-alive, like botocore's pooled connections
to DynamoDB.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection
from typing import Any

# The smallest answer each operation of the ingest path accepts: no item, nothing unprocessed.
_ANSWERS: dict[str, dict[str, Any]] = {
    "BatchWriteItem": {"UnprocessedItems": {}},
    "BatchGetItem": {"Responses": {}, "UnprocessedKeys": {}},
    "Query": {"Items": [], "Count": 0, "ScannedCount": 0},
}


def _serve(delay_seconds: float, ready: Connection) -> None:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # One send per response, no Nagle: headers and body written apart would meet the client's
        # delayed ACK and add ~40 ms to every request.
        wbufsize = -1
        disable_nagle_algorithm = True

        def do_POST(self) -> None:  # the name http.server calls
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            operation = self.headers.get("X-Amz-Target", "").rsplit(".", 1)[-1]
            body = json.dumps(_ANSWERS.get(operation, {})).encode()
            time.sleep(delay_seconds)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-amz-json-1.0")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    ready.send(server.server_address[1])
    server.serve_forever()


class LatencyEndpoint:
    """`with LatencyEndpoint(0.015) as url:` a DynamoDB endpoint answering every request after 15 ms."""

    def __init__(self, delay_seconds: float) -> None:
        self._delay = delay_seconds
        self._process: Any = None

    def __enter__(self) -> str:
        context = multiprocessing.get_context("spawn")  # no copy of the benchmark's threads or state
        receive, send = context.Pipe(duplex=False)
        self._process = context.Process(target=_serve, args=(self._delay, send), daemon=True)
        self._process.start()
        if not receive.poll(30):
            self._process.kill()
            raise RuntimeError("the latency endpoint did not start within 30 s")
        return f"http://127.0.0.1:{receive.recv()}"

    def __exit__(self, *_: object) -> None:
        self._process.terminate()
        self._process.join(10)

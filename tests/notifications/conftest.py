"""A webhook receiver: a real HTTP server on 127.0.0.1 in a thread, answering as told."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class Receiver:
    def __init__(self):
        self.requests: list[dict] = []
        self.answers: list[int] = []  # status codes to answer in turn; 200 once they run out

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.fixture
def receiver():
    seen = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            seen.requests.append({"headers": dict(self.headers), "raw": raw, "body": json.loads(raw)})
            status = seen.answers.pop(0) if seen.answers else 200
            answer = f"answered {status}".encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    seen.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=seen.server.serve_forever, daemon=True)
    thread.start()
    yield seen
    seen.server.shutdown()
    seen.server.server_close()

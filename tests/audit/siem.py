"""What a SIEM does with the audit trail, for the tests: receive it over syslog (RFC 6587
octet-counted messages over TCP, or TLS with the given server context, on 127.0.0.1, collected in
the order they arrived) and verify its hash chain with hashlib and json alone."""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import ssl
import threading
import time

from audit.syslog import unframe

GENESIS = "0" * 64


class Receiver:
    def __init__(self, port: int = 0, context: ssl.SSLContext | None = None):
        self.context = context
        self.messages: list[bytes] = []
        self.handshake_errors: list[Exception] = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._clients: list[socket.socket] = []
        self.listener = socket.create_server(("127.0.0.1", port))  # SO_REUSEADDR: restarts on the same port
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(5)
            if self.context is not None:
                try:
                    conn = self.context.wrap_socket(conn, server_side=True)
                except (ssl.SSLError, OSError) as exc:
                    self.handshake_errors.append(exc)
                    conn.close()
                    continue
            conn.settimeout(None)
            self._clients.append(conn)
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        buffer = b""
        while True:
            try:
                data = conn.recv(65536)
            except OSError:
                break
            if not data:
                break
            messages, buffer = unframe(buffer + data)
            with self._lock:
                self.messages.extend(messages)
        conn.close()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.messages) < count:
            time.sleep(0.01)
        time.sleep(0.05)  # and nothing more than that arrives
        with self._lock:
            return list(self.messages)

    def stop(self) -> None:
        """Gone as a restarted receiver is: the listener and every connection closed."""
        self._stopped.set()
        self.listener.close()
        for conn in self._clients:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        time.sleep(0.05)  # the FIN reaches the sender


def verified(records: list[dict]) -> bool:
    """The chain as a SIEM checks it, nothing of the console's code: each record's hash over the one
    before it and its own content (the record without sequence, prev_hash and hash)."""
    previous = GENESIS
    for rec in records:
        content = {k: v for k, v in rec.items() if k not in ("sequence", "prev_hash", "hash")}
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
        if rec["prev_hash"] != previous:
            return False
        if hashlib.sha256(f"{previous}\n{canonical}".encode()).hexdigest() != rec["hash"]:
            return False
        previous = rec["hash"]
    return True

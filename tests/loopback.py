"""Real SMTP and HTTP servers on loopback that keep what they receive (alert tests)."""

from __future__ import annotations

import json
import threading
from email import message_from_bytes
from email.policy import default as email_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Mailbox:
    """An aiosmtpd server on 127.0.0.1:<port>; `messages` are email.message objects."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[Any] = []
        box = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802
                msg = message_from_bytes(envelope.content, policy=email_policy)
                msg["X-Rcpt"] = ", ".join(envelope.rcpt_tos)
                box.messages.append(msg)
                return "250 OK"

        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def conn_json(self) -> str:
        return json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "port": self.port,
                           "extra": {"disable_tls": True, "disable_ssl": True,
                                     "from_email": "bds@localhost", "timeout": 10,
                                     "retry_limit": 0}})

    def texts(self) -> list[tuple[str, str]]:
        """(subject, plain body) of every message received."""
        out = []
        for m in self.messages:
            part = m.get_body(("html", "plain"))
            out.append((str(m["Subject"]), part.get_content() if part else ""))
        return out

    def stop(self) -> None:
        self.controller.stop()


class Webhook:
    """A ThreadingHTTPServer on 127.0.0.1:<port> keeping every POSTed JSON body."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                n = int(self.headers.get("Content-Length", 0))
                hook.bodies.append(json.loads(self.rfile.read(n) or b"{}"))
                hook.paths.append(self.path)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def conn_json(self) -> str:
        return json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": self.port,
                           "schema": "http"})

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

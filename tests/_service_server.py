"""A loopback SNAP service endpoint for the service-client tests (not a test module).

A raw HTTP/1.1 server on 127.0.0.1 that checks every call's X-SIGNATURE *independently* of
snapbook (``hmac`` + ``hashlib`` + ``base64`` only, over the exact path and bytes received), and
answers from a script of plans so each retry branch can be driven: an answer code, a slow or
dropped answer, a huge body, a body dribbled byte by byte.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SECRET = "o7sWnn0oGXF7y7JBGf18!"
PARTNER = "MCP2021110228"
CHANNEL = "QR004"
GENERATE = "/v1.0/qr/qr-mpm-generate"


def expected_signature(secret: str, method: str, path: str, token: str, body: bytes, timestamp: str) -> str:
    """The symmetric X-SIGNATURE, written from the standard alone, over ``body`` already minified."""
    text = f"{method}:{path}:{token}:{hashlib.sha256(body).hexdigest()}:{timestamp}"
    return base64.b64encode(hmac.new(secret.encode(), text.encode(), hashlib.sha512).digest()).decode()


def strip_json_whitespace(body: bytes) -> bytes:
    """SNAP's minify, written independently: drop space, tab, CR, LF outside JSON strings."""
    out, in_string, escaped = bytearray(), False, False
    for b in body:
        if in_string:
            out.append(b)
            if escaped:
                escaped = False
            elif b == 0x5C:  # backslash
                escaped = True
            elif b == 0x22:
                in_string = False
        elif b == 0x22:
            in_string = True
            out.append(b)
        elif b not in b" \t\r\n":
            out.append(b)
    return bytes(out)


def rsa_ok(public_key: Any, method: str, path: str, body: bytes, timestamp: str, signature: str) -> bool:
    """The asymmetric X-SIGNATURE, checked with cryptography directly."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    text = f"{method}:{path}:{hashlib.sha256(strip_json_whitespace(body)).hexdigest()}:{timestamp}"
    try:
        public_key.verify(base64.b64decode(signature), text.encode(), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    token: str
    signature_ok: bool


class ServiceServer:
    """``plans``: a queue; each request takes the next (default ``("ok",)``)."""

    def __init__(self, secret: str = SECRET, port: int = 0, *, start: bool = True) -> None:
        self.secret = secret
        self.plans: deque[tuple[Any, ...]] = deque()
        self.seen: list[Seen] = []
        self.rejected_tokens: set[str] = set()
        self.reject_all_tokens = False
        #: Set it to check asymmetric (RSA) signatures instead of HMAC.
        self.public_key: Any = None
        self.port = port
        self._httpd: ThreadingHTTPServer | None = None
        if start:
            self.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                server._handle(self)

            do_GET = do_PUT = do_POST

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    def __enter__(self) -> ServiceServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- one request --------------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        auth = h.headers.get("Authorization") or ""
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else ""
        ts, sig = h.headers.get("X-TIMESTAMP") or "", h.headers.get("X-SIGNATURE") or ""
        if self.public_key is not None:
            ok = rsa_ok(self.public_key, h.command, h.path, body, ts, sig)
        else:
            want = expected_signature(self.secret, h.command, h.path, token, strip_json_whitespace(body), ts)
            ok = hmac.compare_digest(want, sig)
        self.seen.append(Seen(h.command, h.path, dict(h.headers.items()), body, token, ok))
        plan = self.plans.popleft() if self.plans else ("ok",)
        kind = plan[0]
        if not ok:
            return self._json(h, 401, {"responseCode": "4014700", "responseMessage": "Unauthorized. [Signature]"})
        if self.reject_all_tokens or token in self.rejected_tokens:
            return self._json(h, 401, {"responseCode": "4014701", "responseMessage": "Invalid Token (B2B)"})
        if kind == "ok":
            return self._json(h, 200, self.ok_body())
        if kind == "code":  # ("code", http, responseCode, message[, headers])
            return self._json(h, plan[1], {"responseCode": plan[2], "responseMessage": plan[3]}, *plan[4:])
        if kind == "sleep":  # ("sleep", seconds): answer after a while (a read timeout on the client)
            time.sleep(plan[1])
            return self._json(h, 200, self.ok_body())
        if kind == "drop":  # close without a byte of answer
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
            return None
        if kind == "raw":  # ("raw", status, content_type, bytes)
            return self._send(h, plan[1], plan[3], {"Content-Type": plan[2]})
        if kind == "big":  # ("big", n): a JSON answer of n bytes
            filler = b"x" * plan[1]
            return self._send(h, 200, b'{"responseCode":"2004700","pad":"' + filler + b'"}', {})
        if kind == "dribble":  # ("dribble", seconds_per_byte): a body one byte at a time
            data = json.dumps(self.ok_body()).encode()
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            try:
                for i in range(min(len(data), 100)):  # bounded: at most 100 bytes, then give up
                    h.wfile.write(data[i : i + 1])
                    h.wfile.flush()
                    time.sleep(plan[1])
            except OSError:
                pass
            h.close_connection = True
            return None
        raise AssertionError(f"unknown plan {plan!r}")

    @staticmethod
    def ok_body() -> dict[str, Any]:
        return {
            "responseCode": "2004700",
            "responseMessage": "Successful",
            "referenceNo": "A1234567890",
            "partnerReferenceNo": "INV-1",
            "qrContent": "00020101021226...6304ABCD",
        }

    def _json(self, h: BaseHTTPRequestHandler, status: int, data: dict, headers: dict | None = None) -> None:
        self._send(h, status, json.dumps(data).encode(), {"Content-Type": "application/json", **(headers or {})})

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, data: bytes, headers: dict[str, str]) -> None:
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("X-TIMESTAMP", time.strftime("%Y-%m-%dT%H:%M:%S+07:00", time.gmtime(time.time() + 7 * 3600)))
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        try:
            h.wfile.write(data)
        except OSError:
            pass

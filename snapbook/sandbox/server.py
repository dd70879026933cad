"""Running the sandbox: uvicorn in a background thread with its own event loop.

:class:`Sandbox` binds a loopback socket itself (port 0 gives a free one, without the race of
"find a free port, then bind it"), hands it to uvicorn's ``Server`` running in a daemon thread,
and on :meth:`Sandbox.stop` asks the server to exit, joins the thread and closes the socket:
nothing is left behind. Because the server has its own thread and loop, the sandbox works the
same from a script, from pytest and from a Jupyter kernel whose loop is already running.

Any page in the user's browser can reach 127.0.0.1, so the server bounds what a peer can hold:
an idle connection is closed after ``keep_alive_timeout``, a request not complete
``request_timeout`` after its first byte is cut, and at most ``max_connections`` are open (the
oldest unfinished one makes room for a new one). Errors the event loop reports under such a
flood (e.g. out of file descriptors) are counted into one log line per interval, not tracebacks.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
import weakref
from collections.abc import Mapping
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

try:
    import resource
except ImportError:  # pragma: no cover - Windows has no RLIMIT_NOFILE
    resource = None  # type: ignore[assignment]

from ..endpoints import Endpoint
from ..endpoints import sandbox as sandbox_endpoint
from ..errors import ConfigError, SnapbookError, SnapResponseError
from ..masking import printable
from ..signing import make_timestamp
from .app import PRODUCTS, TRANSPORT_SCOPE_KEY, Provider, create_app
from .checks import reject
from .config import SandboxConfig
from .faults import Faults
from .journal import Journal

__all__ = ["Sandbox", "SandboxProtocol", "ServerThread", "check_address"]

_HTTP_LOGGER = logging.getLogger("snapbook.sandbox.http")
_HTTP_LOGGER.addHandler(logging.NullHandler())
_LOGGER = logging.getLogger("snapbook.sandbox")

#: File descriptors left for everything else in the process (the kernel, log files, clients).
_SPARE_FDS = 48
#: The listen queue, which is also how many connections asyncio accepts in one go (before any
#: is handed to a protocol that could close one): the connection limit leaves room for them.
_BACKLOG = 100
#: At most one summary line per this many seconds about errors the event loop reported.
_SUMMARY_INTERVAL = 10.0


def connection_limit(max_connections: int) -> int:
    """``max_connections``, lowered to stay below this process's open-file limit."""
    if resource is None:  # pragma: no cover
        return max_connections
    try:
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (OSError, ValueError):  # pragma: no cover - no such limit on this platform
        return max_connections
    if soft == resource.RLIM_INFINITY:
        return max_connections
    return max(8, min(max_connections, soft - _SPARE_FDS - _BACKLOG))


class _HeadWithBody:
    """A connection's transport that sends each answer's status line and headers with its first body bytes.

    uvicorn writes an answer's head and its body separately: two ``send`` system calls (and two
    TCP segments) per answer. This holds the head back until the next write, which uvicorn makes
    for the answer's first ``http.response.body`` message (even an empty one), and writes both at
    once: ASGI's own rule (a server must not start sending an answer before its first body
    message), with no timer per answer. An interim "100 Continue" is not held. A connection
    closed meanwhile still sends the held head first; an aborted one drops it. One per
    connection, re-armed by :meth:`next_answer` for each request; everything else goes to the
    connection's transport.
    """

    __slots__ = ("_cycle", "_held", "_holding", "_transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._cycle: Any = None
        self._holding = False
        self._held = b""

    def next_answer(self, cycle: Any) -> None:
        """``cycle``'s first write once its answer has started is its head: hold it."""
        self._cycle = cycle
        self._holding = True

    def write(self, data: bytes) -> None:
        # The head: held until the body's first write. A write before the answer started (a
        # "100 Continue" the client waits for before sending its body) goes out at once.
        if self._holding and self._cycle.response_started:
            self._holding = False
            self._held = data
            return
        held = self._held
        if held:
            self._held = b""
            data = held + data
        if data:
            self._transport.write(data)

    def flush(self) -> None:
        held, self._held = self._held, b""
        if held and not self._transport.is_closing():  # aborted meanwhile: nothing goes out
            self._transport.write(held)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _IdleDeadline:
    """When a connection's keep-alive ends: what uvicorn's keep-alive timer was, for the sweep to check.

    uvicorn arms a ``loop.call_later`` after every answer and cancels it when the next request
    arrives. Under the sweep's live timer, those cancelled handles cannot leave the top of the
    loop's heap: they pile up to a hundred or more, and every push compares through Python.
    This has the handle's ``cancel()``, which is all uvicorn calls on it.
    """

    __slots__ = ("cancelled", "when")

    def __init__(self, when: float) -> None:
        self.when = when
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class _DeadlineSweep:
    """One timer per server for every connection's deadlines, instead of timers per request.

    Per-request ``loop.call_later`` timers (a request's deadline, armed on its first byte and
    cancelled when it is complete; the keep-alive after each answer) cost a timer handle, a
    heap push and, once cancelled, a heap clean-up on every request; the sweep costs an
    attribute store or two per request and one pass over the open connections every
    ``interval`` (a tenth of the shortest ``request_timeout`` or keep-alive, 0.05 to 1 s). A
    request is cut between ``request_timeout`` and ``request_timeout + interval`` after its
    first byte, an idle connection closed between its keep-alive and that plus ``interval``.
    The timer runs only while connections are open.
    """

    __slots__ = ("_connections", "_handle", "_loop", "interval")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, connections: set[Any], request_timeout: float
    ) -> None:
        self._loop = loop
        self._connections = connections
        self._handle: asyncio.TimerHandle | None = None
        self.interval = min(1.0, max(0.05, request_timeout / 10))

    def arm(self, request_timeout: float, keep_alive: float) -> None:
        """Sweep from now on, at least every tenth of the shorter timeout (a connection was opened)."""
        self.interval = min(self.interval, max(0.05, min(request_timeout, keep_alive) / 10))
        if self._handle is None:
            self._handle = self._loop.call_later(self.interval, self._sweep)

    def _sweep(self) -> None:
        self._handle = None
        now = self._loop.time()
        try:
            for connection in list(self._connections):  # a cut connection leaves the set meanwhile
                if isinstance(connection, SandboxProtocol):
                    started = connection.request_started
                    idle = connection.timeout_keep_alive_task
                    try:
                        if started is not None and now - started >= connection.request_timeout:
                            connection._request_timed_out()
                        elif type(idle) is _IdleDeadline and not idle.cancelled and now >= idle.when:
                            connection.timeout_keep_alive_task = None
                            connection.timeout_keep_alive_handler()
                    except Exception as exc:  # noqa: BLE001 - one failure must not spare the others
                        self._loop.call_exception_handler(
                            {"message": "snapbook: closing a connection past its deadline failed", "exception": exc}
                        )
        finally:  # rescheduled whatever happened above: no request escapes its deadline
            if self._connections and self._handle is None:
                self._handle = self._loop.call_later(self.interval, self._sweep)

    def stop(self) -> None:
        """Cancel the timer (the server is stopping)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    @staticmethod
    def of(server_state: Any, loop: asyncio.AbstractEventLoop, request_timeout: float) -> _DeadlineSweep:
        """The server's sweep, made by its first connection; kept on uvicorn's per-server state.

        On the state, not in a module-level table: it lives and dies with its server (a table
        keyed by the state kept every stopped sandbox alive through the sweep's loop).
        """
        sweep = getattr(server_state, _SWEEP_ATTRIBUTE, None)
        if sweep is None:
            sweep = _DeadlineSweep(loop, server_state.connections, request_timeout)
            setattr(server_state, _SWEEP_ATTRIBUTE, sweep)
        return sweep


_SWEEP_ATTRIBUTE = "snapbook_deadline_sweep"


class SandboxProtocol(H11Protocol):
    """uvicorn's h11 protocol, with two additions for the sandbox.

    - The connection's transport goes into ``scope["extensions"]["snapbook.transport"]``, so a
      dropped-connection fault can close the connection without sending anything.
    - A request that is not even valid HTTP/1.1 gets a SNAP JSON ``400 4007300`` (with both
      response headers, and a journal row) instead of uvicorn's plain-text 400.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Protocol chatter (a client sent garbage, a websocket upgrade) is journaled; keep it off
        # stderr unless the application configures logging.
        self.logger = _HTTP_LOGGER
        sandbox_config = self._sandbox_config()
        self.request_timeout = sandbox_config.request_timeout if sandbox_config else 10.0
        self.max_connections = connection_limit(sandbox_config.max_connections if sandbox_config else 512)
        self.opened_at = 0.0
        self.received = 0
        #: The loop time of the current request's first byte; None between requests.
        self.request_started: float | None = None
        #: The connection's one-write transport (:class:`_HeadWithBody`), made for its first answer.
        self._one_write: _HeadWithBody | None = None
        self.deadlines = _DeadlineSweep.of(self.server_state, self.loop, self.request_timeout)

    def _sandbox_config(self) -> SandboxConfig | None:
        provider = getattr(getattr(self.config.app, "state", None), "provider", None)
        return provider.config if isinstance(provider, Provider) else None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.opened_at = self.loop.time()
        if len(self.connections) > self.max_connections and not self._make_room():
            self.connections.discard(self)
            transport.abort()
            return
        # uvicorn arms its keep-alive only after a response: arm it for the first request too.
        self.timeout_keep_alive_task = _IdleDeadline(self.opened_at + self.timeout_keep_alive)  # type: ignore[assignment]
        self.deadlines.arm(self.request_timeout, self.timeout_keep_alive)

    def on_response_complete(self) -> None:
        """uvicorn's, with the keep-alive left to the server's sweep (an :class:`_IdleDeadline`, no timer)."""
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self._unset_keepalive_if_required()
        self.timeout_keep_alive_task = _IdleDeadline(self.loop.time() + self.timeout_keep_alive)  # type: ignore[assignment]
        self.flow.resume_reading()  # unpause reads if needed
        if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:  # pipelined requests
            self.conn.start_next_cycle()
            self.handle_events()

    def _make_room(self) -> bool:
        """Close the oldest connection that is idle or still sending its request; False if none is."""
        waiting = [
            c
            for c in self.connections
            if c is not self
            and isinstance(c, SandboxProtocol)
            and (c.cycle is None or c.cycle.response_complete)
        ]
        if not waiting:
            return False
        oldest = min(waiting, key=lambda c: c.opened_at)
        oldest.connections.discard(oldest)
        oldest.transport.abort()
        return True

    def data_received(self, data: bytes) -> None:
        if self.request_started is None and self.conn.their_state is h11.IDLE:
            # A new request starts: all of it must arrive in time, however slowly it trickles
            # (the server's deadline sweep cuts it otherwise).
            self.received = 0
            self.request_started = self.loop.time()
        self.received += len(data)
        super().data_received(data)

    def _request_done(self) -> None:
        self.request_started = None

    def _request_timed_out(self) -> None:
        self.request_started = None
        if self.transport.is_closing():
            return
        started = self.cycle is not None and not self.cycle.response_complete
        self.transport.abort()
        provider = getattr(getattr(self.config.app, "state", None), "provider", None)
        if started or not isinstance(provider, Provider):
            return  # the application saw the request and journals the disconnect itself
        note = (
            f"request not complete within {self.request_timeout:g} s ({self.received} bytes received): "
            "connection closed"
        )
        verdict = reject(408, "00", "Request Timeout", [note])
        info = {"time": provider.config.now(), "method": "", "path": "", "product": "", "client_key": ""}
        provider.record_verdict(
            info,
            time.perf_counter(),
            verdict,
            http_status=0,
            response_code="",
            response_message="closed unanswered",
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self._request_done()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.ERROR):
            self._request_done()
        # A new request: its task was created above but has not run yet, so its scope can still
        # be tagged and its answer's head and body made one write (once per request: uvicorn
        # calls this again after the answer, for pipelined requests).
        cycle = self.cycle
        if cycle is not None and cycle.transport is self.transport and not cycle.response_started:
            one_write = self._one_write
            if one_write is None or one_write._transport is not self.transport:
                one_write = self._one_write = _HeadWithBody(self.transport)
            one_write.next_answer(cycle)
            cycle.transport = one_write  # type: ignore[assignment]
            cycle.scope.setdefault("extensions", {})[TRANSPORT_SCOPE_KEY] = self.transport  # type: ignore[typeddict-unknown-key]

    def send_400_response(self, msg: str) -> None:
        provider = getattr(getattr(self.config.app, "state", None), "provider", None)
        if not isinstance(provider, Provider):
            super().send_400_response(msg)
            return
        started = time.perf_counter()
        verdict = reject(400, "00", "Bad Request (malformed HTTP request)", [f"not valid HTTP/1.1: {msg}"])
        body = json.dumps(
            {"responseCode": verdict.response_code, "responseMessage": verdict.response_message},
            separators=(",", ":"),
        )
        headers = [
            (b"content-type", b"application/json"),
            (b"connection", b"close"),
            (b"x-timestamp", make_timestamp(provider.config.now).encode()),
            (b"x-client-key", b""),
        ]
        try:
            for event in (
                h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
                h11.Data(data=body.encode()),
                h11.EndOfMessage(),
            ):
                self.transport.write(self.conn.send(event))
        except h11.LocalProtocolError:  # an answer was already under way: just hang up
            pass
        self.transport.close()
        info = {"time": provider.config.now(), "method": "", "path": "", "product": "", "client_key": ""}
        provider.record_verdict(info, started, verdict)


class _QuietServer(uvicorn.Server):
    """uvicorn's server, with the event loop's error reports counted instead of printed.

    Under a flood (out of file descriptors, peers resetting) asyncio would write a traceback
    per event to stderr; this writes one warning line per interval saying how many there were.
    """

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.loop_errors = 0
        self._unreported = 0
        self._last_report = float("-inf")

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        asyncio.get_running_loop().set_exception_handler(self._loop_error)
        try:
            await super().serve(sockets=sockets)
        finally:
            sweep = getattr(self.server_state, _SWEEP_ATTRIBUTE, None)
            if sweep is not None:
                sweep.stop()
            if self._unreported:  # the tail of a flood, counted once more at the end
                _LOGGER.warning(
                    "snapbook sandbox: %d more event-loop error(s) before it stopped", self._unreported
                )

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        self.loop_errors += 1
        self._unreported += 1
        now = time.monotonic()
        if now - self._last_report >= _SUMMARY_INTERVAL:
            exc = context.get("exception")
            what = f"{type(exc).__name__}: {exc}" if exc is not None else str(context.get("message", "?"))
            _LOGGER.warning(
                "snapbook sandbox: %d event-loop error(s) since the last report, latest %s",
                self._unreported,
                printable(what, 200),
            )
            self._unreported, self._last_report = 0, now


def _shutdown(
    server: uvicorn.Server | None,
    thread: threading.Thread | None,
    sock: socket.socket | None,
    closing: threading.Event,
    timeout: float,
) -> None:
    closing.set()  # cut injected delays short
    if server is not None:
        server.should_exit = True
    if thread is not None and thread is not threading.current_thread():
        thread.join(timeout)
        if thread.is_alive() and server is not None:
            server.force_exit = True
            thread.join(timeout)
    if sock is not None:
        sock.close()


def _check_host(host: object) -> None:
    """Refuse a host that is no address at all: '' would listen on every interface."""
    usable = isinstance(host, str) and host.strip() and host.isprintable() and " " not in host
    if not usable or len(host) > 255:  # type: ignore[arg-type]
        shown = printable(repr(host), 100)
        raise ConfigError(
            f"host must be an address or host name such as 127.0.0.1, not {shown}.",
            hint="127.0.0.1 (the default) keeps the sandbox reachable from this machine only.",
        )


def check_address(host: object, port: object) -> str:
    """``host`` (brackets of ``[::1]`` removed) once it and ``port`` are usable; else ConfigError."""
    _check_host(host)
    assert isinstance(host, str)
    if host.startswith("[") and host.endswith("]"):  # [::1], as it is written in a URL
        host = host[1:-1]
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError(
            f"port must be a whole number from 0 to 65535, not {port!r}.",
            hint="8765 is the CLI's default; 0 picks a free port.",
        )
    return host


class ServerThread:
    """An ASGI app served by uvicorn on a socket bound here, in a daemon thread: the sandbox's runner.

    The sandbox and the notification receiver (:mod:`snapbook.receiver`) both run through it, so
    both get the same bounds (:class:`SandboxProtocol`: request deadline, connection limit,
    keep-alive timeout) and the same clean shutdown. ``name`` says what runs, in the thread's
    name, the Server header and errors.
    """

    def __init__(
        self,
        app: Any,
        *,
        host: str,
        port: int,
        keep_alive_timeout: float,
        closing: threading.Event | None = None,
        name: str = "sandbox",
    ) -> None:
        self.app = app
        self.host = host
        self.requested_port = port
        self.keep_alive_timeout = keep_alive_timeout
        self.closing = closing if closing is not None else threading.Event()
        self.name = name
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._port: int | None = None
        self._finalizer: weakref.finalize | None = None

    def start(self, timeout: float = 10.0) -> ServerThread:
        """Bind, start the server thread and wait until it serves; returns self."""
        if self.running:
            return self
        sock = self._bind()
        config = uvicorn.Config(
            self.app,
            lifespan="off",
            loop="asyncio",
            http=SandboxProtocol,
            ws="none",
            log_config=None,
            access_log=False,
            proxy_headers=False,
            server_header=False,
            headers=[("Server", f"snapbook-{self.name}")],
            timeout_graceful_shutdown=2,
            timeout_keep_alive=self.keep_alive_timeout,
            backlog=_BACKLOG,
        )
        server = _QuietServer(config)
        port = sock.getsockname()[1]
        thread = threading.Thread(
            target=self._serve, args=(server, sock), name=f"snapbook-{self.name}-{port}", daemon=True
        )
        self._server, self._thread, self._socket, self._port = server, thread, sock, port
        # A server forgotten (its owner reassigned, garbage-collected) or still running at
        # interpreter exit is shut down too; the finalizer holds no reference to self.
        self._finalizer = weakref.finalize(self, _shutdown, server, thread, sock, self.closing, 5.0)
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise SnapbookError(
                    f"The {self.name} did not start on {self.host}:{port} within {timeout:g} s.",
                    hint="Set SNAPBOOK_DEBUG=1 and look for uvicorn errors on stderr.",
                )
            time.sleep(0.005)
        return self

    @staticmethod
    def _serve(server: uvicorn.Server, sock: socket.socket) -> None:
        # Server.run makes a new event loop in this thread (asyncio.Runner); signals are left
        # to the main thread, since uvicorn only installs handlers there.
        try:
            server.run(sockets=[sock])
        except SystemExit:  # uvicorn exits on startup failure; the thread just ends
            pass

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and
        # without it every answer (headers, then body) waits ~40 ms for the client's delayed ACK.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.requested_port))
            sock.listen(_BACKLOG)
            sock.setblocking(False)
        except (OSError, OverflowError, ValueError, UnicodeError) as exc:
            sock.close()
            reason = getattr(exc, "strerror", None) or exc
            raise ConfigError(
                f"Cannot listen on {printable(self.host, 100)}:{self.requested_port}: "
                f"{printable(str(reason), 200)}.",
                hint="Choose another port, or port 0 for a free one; the host must be a local address.",
            ) from None
        return sock

    def stop(self, timeout: float = 10.0) -> None:
        """End the server, join its thread, close the socket. Safe to call twice."""
        finalizer, self._finalizer = self._finalizer, None
        if finalizer is not None:
            finalizer.detach()
            _shutdown(self._server, self._thread, self._socket, self.closing, timeout)
        self._server = self._thread = self._socket = None
        self._port = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def port(self) -> int:
        """The port bound (a free one when 0 was asked); SnapbookError when not running."""
        if self._port is None:
            raise SnapbookError(
                f"The {self.name} is not running.", hint="Call start() or use it in a with block."
            )
        return self._port


class Sandbox:
    """A local SNAP provider on ``http://127.0.0.1:<free port>``, in a background thread.

    >>> with Sandbox() as sb:                                  # doctest: +SKIP
    ...     sb.register("MCP00000001", key.public_key())
    ...     httpx.post(sb.token_url("payment"), headers=..., json=...)

    Use it as a context manager, or call :meth:`start` and :meth:`stop` yourself (a notebook
    can keep one running across cells). Clients and faults can be changed while it runs.
    """

    def __init__(
        self,
        config: SandboxConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clients: Mapping[str, Any] | None = None,
        journal: Journal | None = None,
    ) -> None:
        if config is not None and not isinstance(config, SandboxConfig):
            raise ConfigError(
                f"config must be a SandboxConfig, not {type(config).__name__}.",
                hint="Sandbox(SandboxConfig(freshness_seconds=60)).",
            )
        host = check_address(host, port)
        if journal is not None and not isinstance(journal, Journal):
            raise ConfigError(
                f"journal must be a snapbook.sandbox.Journal, not {type(journal).__name__}.",
                hint="Leave it out for a new one, or share one: Sandbox(journal=Journal(max_bytes=...)).",
            )
        self.config = config or SandboxConfig()
        self.host = host
        self._requested_port = port
        self.app = create_app(self.config, clients=clients, journal=journal)
        self.provider: Provider = self.app.state.provider
        self._runner: ServerThread | None = None

    # --- lifecycle --------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> Sandbox:
        """Start serving in a background thread; returns self. Does nothing if already running."""
        if self.running:
            return self
        self.provider.closing.clear()
        runner = ServerThread(
            self.app,
            host=self.host,
            port=self._requested_port,
            keep_alive_timeout=self.config.keep_alive_timeout,
            closing=self.provider.closing,
            name="sandbox",
        )
        # A sandbox forgotten in a notebook (reassigned, garbage-collected) or still running at
        # interpreter exit is shut down too: the runner's finalizer holds no reference to self.
        self._runner = runner.start(timeout)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving: end the server, join its thread, close the socket. Safe to call twice."""
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.stop(timeout)

    @property
    def running(self) -> bool:
        return self._runner is not None and self._runner.running

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- where it is ------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._runner is None:
            raise SnapbookError("The sandbox is not running.", hint="Call start() or use it in a with block.")
        return self._runner.port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def token_url(self, product: str = "payment") -> str:
        """The full token URL for ``payment``, ``disbursement`` or ``snap``."""
        path = PRODUCTS.get(product)
        if path is None:
            raise ConfigError(
                f"Unknown sandbox product {product!r}.", hint="Use one of: " + ", ".join(PRODUCTS) + "."
            )
        return self.base_url + path

    def endpoint(self, product: str = "payment") -> Endpoint:
        """This sandbox's token endpoint as an :class:`~snapbook.endpoints.Endpoint` (environment "sandbox")."""
        return sandbox_endpoint(self.base_url, product)

    @property
    def validate_url(self) -> str:
        from .app import VALIDATE_PATH

        return self.base_url + VALIDATE_PATH

    # --- state ------------------------------------------------------------------------

    def register(
        self,
        client_key: str,
        public_key: Any,
        *,
        secret: str | bytes | None = None,
        partner_id: str | None = None,
    ) -> None:
        """Accept ``client_key`` signed by the private half of ``public_key`` (key object, PEM/DER, path).

        ``secret``: the client secret of its service calls (HMAC-SHA512) and notifications;
        ``partner_id``: its X-PARTNER-ID (default: the client key).
        """
        self.provider.register(client_key, public_key, secret=secret, partner_id=partner_id)

    def service_url(self, path: str) -> str:
        """The full URL of a service route, e.g. ``service_url("/v1.0/qr/qr-mpm-generate")``."""
        return self.base_url + path

    def pay(
        self, reference_no: str, *, issuer: str | None = None, timeout: float | None = None
    ) -> dict[str, Any]:
        """Pay the QR ``reference_no`` and deliver its notification; the pay route's JSON answer.

        The answer's ``notification`` says whether the callback answered HTTP 200 and lists each
        attempt. A QR that is unknown, expired or already paid raises :class:`SnapResponseError`.
        """
        import httpx

        from .service_routes import PAY_PATH

        config = self.config
        if timeout is None:  # every attempt, every backoff, and some room
            backoff = sum(config.notify_backoff * 2**i for i in range(config.notify_retries))
            timeout = (config.notify_retries + 1) * config.notify_timeout + backoff + 10
        body: dict[str, Any] = {"referenceNo": reference_no}
        if issuer is not None:
            body["issuer"] = issuer
        with httpx.Client(trust_env=False, timeout=timeout) as client:
            answer = client.post(self.base_url + PAY_PATH, json=body)
        data = answer.json()
        if answer.status_code != 200:
            raise SnapResponseError(
                f"The sandbox refused to pay {printable(str(reference_no), 80)}: "
                f"{data.get('responseCode')} {data.get('responseMessage')}.",
                hint="Pay the referenceNo of a QR generated on this sandbox, before it expires, once.",
                http_status=answer.status_code,
                response_code=data.get("responseCode"),
                response_message=data.get("responseMessage"),
            )
        return data

    def unregister(self, client_key: str) -> None:
        self.provider.unregister(client_key)

    @property
    def clients(self) -> list[str]:
        """The registered client keys."""
        return sorted(self.provider.clients)

    @property
    def journal(self) -> Journal:
        return self.provider.journal

    @property
    def faults(self) -> Faults:
        return self.provider.faults

    @faults.setter
    def faults(self, faults: Faults | None) -> None:
        self.provider.faults = faults

    def validate_token(self, token: str) -> dict[str, Any]:
        """The claims of a token this sandbox issued; :class:`InvalidTokenError` if invalid or expired."""
        return self.provider.validate_token(token)

    def on_request(self, listener: Any) -> Any:
        """Call ``listener(entry: JournalEntry)`` after each request; returns an unsubscribe function."""
        return self.journal.subscribe(listener)

    # --- display ----------------------------------------------------------------------

    def __repr__(self) -> str:
        where = self.base_url if self.running else "stopped"
        mode = "strict" if self.config.strict else "lenient"
        return f"<Sandbox {where}, {mode}, {len(self.clients)} client(s), {len(self.journal)} request(s)>"

    def _repr_html_(self) -> str:
        import html

        rows = [("status", self.base_url if self.running else "stopped")]
        if self.running:
            from .service_routes import served_routes

            rows += [(f"token URL ({p})", self.token_url(p)) for p in PRODUCTS]
            rows += [(what, f"{method} {self.base_url}{path}") for method, path, what in served_routes()]
        rows += [
            ("mode", "strict" if self.config.strict else "lenient"),
            ("clients", ", ".join(self.clients) or "none registered"),
            ("faults", self.faults.describe()),
            ("journal", repr(self.journal)),
        ]
        body = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th><td style='text-align:left'><code>"
            f"{html.escape(v)}</code></td></tr>"
            for k, v in rows
        )
        return f"<table>{body}</table>"

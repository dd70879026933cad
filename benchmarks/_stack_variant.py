"""One server of ``ab_stack.py``: an app (the service floor or the sandbox) under a runner, in its own process.

    python -m benchmarks._stack_variant APP RUNNER PORT PUBLIC_PEM

APP: ``floor`` (``_service_floor``), ``tokenfloor`` (``_bare_app``'s RSA verify + JWT) or ``sandbox`` (``snapbook.sandbox.create_app``, the client
registered with its secret, no journal listener). RUNNER: ``thread-nohold`` (``thread`` without ``_HeadWithBody``), ``uvicorn`` (``uvicorn.run`` in the
main thread, stock h11 protocol, as the uvicorn CLI) or ``thread`` (snapbook's ``ServerThread``:
``SandboxProtocol`` in a background thread, the main thread waiting, as ``snapbook sandbox``).
APP may carry experiment knobs: ``+jN`` (a journal of N rows), ``+nogc`` (the collector off),
``+freeze`` (startup objects frozen out of the collector's way). ``cli`` / ``cliquiet`` /
``cligc`` run ``snapbook sandbox`` itself (see ``ab_stack.py``). Secrets come from the
environment, as for the benchmark's servers. Stops on SIGTERM.
"""

from __future__ import annotations

import os
import signal
import sys
import threading


def _app(name: str, public_pem: str):
    name, *mods = name.split("+")  # experiment knobs: +jN (journal of N rows), +nogc, +freeze
    jwt_secret = os.environ["SNAPBOOK_BENCH_JWT_SECRET"]
    client_secret = os.environ["SNAPBOOK_BENCH_CLIENT_SECRET"]
    if name == "floor":
        from ._service_floor import create_app

        return create_app(jwt_secret.encode(), client_secret.encode())
    if name == "tokenfloor":  # the token route's floor: RSA verify + HS512 JWT (``_bare_app``'s /floor route)
        from pathlib import Path

        from snapbook.keys import read_public_key

        from ._bare_app import create_app as create_bare
        from ._servers import TOKEN_PATH

        answer = {
            "body": "{}",
            "headers": {"X-TIMESTAMP": "2026-01-01T00:00:00+07:00", "X-CLIENT-KEY": ""},
            "path": TOKEN_PATH,
        }
        return create_bare(answer, read_public_key(Path(public_pem)))
    from pathlib import Path

    from snapbook.keys import read_public_key
    from snapbook.sandbox import SandboxConfig, create_app

    from ._context import CLIENT_KEY

    journal = None
    for mod in mods:
        if mod.startswith("j"):
            from snapbook.sandbox import Journal

            journal = Journal(maxlen=int(mod[1:]))
    app = create_app(SandboxConfig(secret=jwt_secret, token_lifetime=3600), journal=journal)
    app.state.provider.register(CLIENT_KEY, read_public_key(Path(public_pem)), secret=client_secret)
    return app


class _NoHold:
    """The connection's own transport: what SandboxProtocol uses without its one-write answers."""

    def __init__(self, transport) -> None:
        self._transport = transport

    def next_answer(self, cycle) -> None:
        pass

    def __getattr__(self, name: str):
        return getattr(self._transport, name)


def _count_gc() -> None:
    """Time spent in each generation's collections, printed at exit (``SNAPBOOK_AB_GC=1``)."""
    import atexit
    import gc
    import time

    spent = [0, 0, 0]
    runs = [0, 0, 0]
    started = [0]

    def callback(phase: str, info: dict) -> None:
        if phase == "start":
            started[0] = time.perf_counter_ns()
        else:
            spent[info["generation"]] += time.perf_counter_ns() - started[0]
            runs[info["generation"]] += 1

    gc.callbacks.append(callback)
    atexit.register(
        lambda: print(
            f"GC runs {runs} ms {[round(s / 1e6, 1) for s in spent]} objects {len(gc.get_objects())}",
            file=sys.stderr,
            flush=True,
        )
    )


def main(argv: list[str]) -> None:
    if os.environ.get("SNAPBOOK_AB_GC"):
        _count_gc()
    if argv[0].startswith(
        "cli"
    ):  # snapbook sandbox itself, in this process; cli:PAUSE[:SWITCH] sets two knobs
        from snapbook.cli import main as cli_main

        if argv[0].startswith("cligc"):  # experiment: startup objects frozen out of the collector's way
            import gc

            import snapbook.cli.sandbox
            import snapbook.sandbox  # noqa: F401

            gc.collect()
            gc.freeze()
        if argv[0].startswith("cliquiet"):  # experiment: the CLI with no journal listener (no console lines)
            from snapbook.sandbox import Journal

            Journal.subscribe = lambda self, listener: (lambda: None)  # type: ignore[method-assign]
        knobs = argv[0].split(":")[1:]
        if knobs and knobs[0]:
            import snapbook.cli.sandbox as console

            console._CONSOLE_PAUSE = float(knobs[0])
        if len(knobs) > 1:
            sys.setswitchinterval(float(knobs[1]))
        sys.exit(cli_main(argv[1:]))
    app_name, runner, port, public_pem = argv[0], argv[1], int(argv[2]), argv[3]
    app = _app(app_name, public_pem)
    import gc

    if "+nogc" in app_name:
        gc.disable()
    if "+freeze" in app_name:
        gc.collect()
        gc.freeze()
    if runner == "uvicorn":
        import uvicorn

        uvicorn.run(
            app,
            host="127.0.0.1",
            port=port,
            loop="asyncio",
            http="h11",
            lifespan="off",
            access_log=False,
            log_level="warning",
            workers=1,
        )
        return
    import snapbook.sandbox.server as runner_module

    if runner == "thread-nohold":  # the runner without _HeadWithBody: head and body written separately
        runner_module._HeadWithBody = _NoHold
    server = runner_module.ServerThread(app, host="127.0.0.1", port=port, keep_alive_timeout=5.0).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(0.5):  # as the CLI's main thread does
        pass
    server.stop()


if __name__ == "__main__":
    main(sys.argv[1:])

"""The two HTTP servers, each in its own process on a free 127.0.0.1 port, one uvicorn worker each.

- ``snapbook sandbox`` (the CLI, as a user runs it), with the run's public key registered;
- the bare Starlette app of :mod:`benchmarks._bare_app`, started by ``python -m uvicorn`` with
  the same loop and HTTP implementation the sandbox uses (asyncio, h11).

Both are stopped (SIGTERM, then SIGKILL after a grace period) by the process handle we hold:
nothing else is ever signalled.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from ._context import CLIENT_KEY, ROOT, Context, child_env, free_port, python

TOKEN_PATH = "/auth/merchants/v1.0/access-token/b2b"
BODY = b'{"grantType":"client_credentials","additionalInfo":{}}'


@dataclass
class Server:
    name: str
    proc: subprocess.Popen
    port: int
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token_url(self) -> str:
        return self.base_url + TOKEN_PATH

    @property
    def floor_url(self) -> str:
        """The bare app's minimal-crypto route (see benchmarks/_bare_app.py)."""
        return self.base_url + "/floor" + TOKEN_PATH

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def __enter__(self) -> Server:  # noqa: PYI034 - typing.Self needs Python 3.11
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _start(
    name: str, cmd: list[str], ctx: Context, probe: str, env: dict[str, str] | None = None, start_s: float = 30.0
) -> Server:
    port = free_port()
    cmd = [c.replace("{port}", str(port)) for c in cmd]
    log = ctx.tmp / f"{name}-{port}.log"
    with open(log, "wb") as fh:
        # The sandbox CLI prints one line per request: send it to a file, as a user would see it in a terminal.
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env or child_env(), cwd=ROOT)
    server = Server(name, proc, port, log)
    deadline = time.monotonic() + start_s
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}: {log.read_text(errors='replace')[-500:]}")
        try:
            if httpx.get(server.base_url + probe, timeout=1.0).status_code < 500:
                return server
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"{name} did not answer on port {port} within {start_s:g} s")
        time.sleep(0.05)


def start_sandbox(ctx: Context) -> Server:
    """``snapbook sandbox`` on a free port, with the run's public key registered for CLIENT_KEY."""
    exe = ROOT / ".venv" / "bin" / "snapbook"
    launcher = [str(exe)] if exe.exists() else [python(), "-m", "snapbook"]
    return _start(
        "sandbox",
        [*launcher, "sandbox", "--host", "127.0.0.1", "--port", "{port}", "--register", f"{CLIENT_KEY}={ctx.public_pem}"],
        ctx,
        probe="/openapi.json",
    )


def capture_answer(sandbox: Server, headers: dict[str, str], path: Path) -> dict:
    """One real success answer from the sandbox, saved for the bare app to replay."""
    r = httpx.post(sandbox.token_url, headers=headers, content=BODY, timeout=10)
    if r.status_code != 200:
        raise RuntimeError(f"the sandbox refused the benchmark's signed request: {r.status_code} {r.text[:200]}")
    keep = {k: v for k, v in r.headers.items() if k.lower() in ("x-timestamp", "x-client-key")}
    answer = {"body": r.text, "headers": keep, "path": TOKEN_PATH}
    path.write_text(json.dumps(answer), encoding="utf-8")
    return answer


def start_bare(ctx: Context, answer_file: Path) -> Server:
    """The bare Starlette app under uvicorn: one worker, asyncio loop, h11 (as the sandbox), no access log."""
    env = child_env()
    env["SNAPBOOK_BENCH_ANSWER"] = str(answer_file)
    env["SNAPBOOK_BENCH_PUB"] = str(ctx.public_pem)
    return _start(
        "bare",
        [python(), "-m", "uvicorn", "--factory", "benchmarks._bare_app:from_env", "--host", "127.0.0.1", "--port", "{port}",
         "--workers", "1", "--loop", "asyncio", "--http", "h11", "--lifespan", "off", "--no-access-log",
         "--log-level", "warning"],
        ctx,
        probe="/",
        env=env,
    )

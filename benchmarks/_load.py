"""Bounded load generators with a fixed number of concurrent workers, one keep-alive connection each.

Two generators with the same interface, so both servers always get the same one:

- :class:`RawLoadGenerator` (the default): asyncio streams writing pre-serialised HTTP/1.1
  requests and reading answers by Content-Length. About 0.1 ms of client CPU per request, so
  the server, not the generator, is what saturates.
- :class:`LoadGenerator`: an ``httpx.AsyncClient``. Realistic, but on this machine it costs
  several ms of client CPU per request and slows down as concurrency grows (a known httpx
  limitation, encode/httpx#3215), so it measures mostly itself; kept to show that.

Requests are prepared before timing (headers already signed); the timed part is only
sending them and reading the answers. Each run stops at ``count`` requests or after
``max_seconds``, whichever comes first.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx


@dataclass
class LoadResult:
    sent: int
    seconds: float
    #: Per-request latency, nanoseconds, in completion order.
    latencies_ns: list[int] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    errors: int = 0

    @property
    def rate(self) -> float:
        """Answered requests per second."""
        return len(self.latencies_ns) / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, p: float) -> float:
        """The ``p``-th percentile latency in seconds (nearest rank)."""
        v = sorted(self.latencies_ns)
        if not v:
            return float("nan")
        k = min(len(v) - 1, max(0, round(p / 100 * len(v) + 0.5) - 1))
        return v[k] / 1e9


class LoadGenerator:
    """One AsyncClient per target URL, kept across rounds (keep-alive connections, like a real client)."""

    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self.loop = asyncio.new_event_loop()
        self._clients: dict[str, httpx.AsyncClient] = {}

    def _client(self, url: str) -> httpx.AsyncClient:
        client = self._clients.get(url)
        if client is None:
            limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
            client = self._clients[url] = httpx.AsyncClient(limits=limits, timeout=30.0, trust_env=False)
        return client

    def run(self, url: str, requests: list[tuple[dict[str, str], bytes]], *, count: int,
            max_seconds: float) -> LoadResult:
        """Send ``count`` POSTs (cycling through ``requests``) with ``concurrency`` in flight."""
        return self.loop.run_until_complete(self._run(url, requests, count, max_seconds))

    async def _run(self, url: str, requests: list[tuple[dict[str, str], bytes]], count: int,
                   max_seconds: float) -> LoadResult:
        client = self._client(url)
        clock = time.perf_counter_ns
        result = LoadResult(0, 0.0)
        next_index = 0
        start = clock()
        deadline = start + int(max_seconds * 1e9)

        async def worker() -> None:
            nonlocal next_index
            while next_index < count and clock() < deadline:
                headers, body = requests[next_index % len(requests)]
                next_index += 1
                t0 = clock()
                try:
                    r = await client.post(url, headers=headers, content=body)
                    await r.aread()
                except httpx.HTTPError:
                    result.errors += 1
                    continue
                result.latencies_ns.append(clock() - t0)
                result.statuses[r.status_code] += 1

        await asyncio.gather(*(worker() for _ in range(self.concurrency)))
        result.seconds = (clock() - start) / 1e9
        result.sent = next_index
        return result

    def close(self) -> None:
        for client in self._clients.values():
            self.loop.run_until_complete(client.aclose())
        self.loop.close()

    def __enter__(self) -> LoadGenerator:  # noqa: PYI034 - typing.Self needs Python 3.11
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RawLoadGenerator:
    """``concurrency`` asyncio connections sending pre-serialised HTTP/1.1 POSTs (keep-alive)."""

    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self.loop = asyncio.new_event_loop()

    @staticmethod
    def serialise(url: str, headers: dict[str, str], body: bytes) -> bytes:
        parts = urlsplit(url)
        lines = [f"POST {parts.path} HTTP/1.1", f"Host: {parts.netloc}", f"Content-Length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    def run(self, url: str, requests: list[tuple[dict[str, str], bytes]], *, count: int,
            max_seconds: float) -> LoadResult:
        wire = [self.serialise(url, h, b) for h, b in requests]  # before timing
        return self.loop.run_until_complete(self._run(url, wire, count, max_seconds))

    async def _run(self, url: str, wire: list[bytes], count: int, max_seconds: float) -> LoadResult:
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        clock = time.perf_counter_ns
        result = LoadResult(0, 0.0)
        next_index = 0
        conns = [await asyncio.open_connection(host, port) for _ in range(self.concurrency)]
        start = clock()
        deadline = start + int(max_seconds * 1e9)

        async def worker(i: int) -> None:
            nonlocal next_index
            reader, writer = conns[i]
            while next_index < count and clock() < deadline:
                data = wire[next_index % len(wire)]
                next_index += 1
                t0 = clock()
                try:
                    writer.write(data)
                    head = await reader.readuntil(b"\r\n\r\n")
                    length, close = 0, False
                    for line in head.split(b"\r\n")[1:]:
                        name, _, value = line.partition(b":")
                        name = name.strip().lower()
                        if name == b"content-length":
                            length = int(value)
                        elif name == b"connection" and value.strip().lower() == b"close":
                            close = True
                        elif name == b"transfer-encoding":
                            raise ValueError("chunked answers are not expected here")
                    await reader.readexactly(length)
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    result.errors += 1
                    close = True
                else:
                    result.latencies_ns.append(clock() - t0)
                    result.statuses[int(head[9:12])] += 1
                if close:
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
            conns[i] = (reader, writer)

        await asyncio.gather(*(worker(i) for i in range(self.concurrency)))
        result.seconds = (clock() - start) / 1e9
        result.sent = next_index
        for _, writer in conns:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass
        return result

    def close(self) -> None:
        self.loop.close()

    def __enter__(self) -> RawLoadGenerator:  # noqa: PYI034 - typing.Self needs Python 3.11
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

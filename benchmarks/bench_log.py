"""Log: RequestLog append + to_dataframe against ``pd.DataFrame(list_of_dicts)`` of the same rows.

Both sides start from the same 100,000 rows made before timing (records for the log, plain
dicts with the same values for pandas), so only appending and building the table is timed.
The log's DataFrame is typed (datetime64 UTC, category, Int64, string); the bare one is what
pandas infers (mostly object columns), i.e. the cheapest thing a user could write.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from snapbook.log import INVALID_RESPONSE, REFUSED, SUCCESS, TRANSPORT_ERROR, LogRecord, RequestLog
from snapbook.masking import mask

from ._context import CLIENT_KEY, Context
from ._harness import Row, compare, compare_ops, timed

AREA = "log"
T0 = datetime(2026, 1, 20, 3, 0, tzinfo=timezone.utc)


def make_records(n: int, seed: int = 7) -> list[LogRecord]:
    """``n`` realistic rows: mostly successes, some refusals and transport errors, masked secrets."""
    rng = random.Random(seed)
    sig = mask("A" * 344)
    tok = mask("eyJ" + "x" * 300)
    envs = ("payment-stage", "payment-production", "sandbox")
    out = []
    for i in range(n):
        roll = rng.random()
        outcome = SUCCESS if roll < 0.9 else REFUSED if roll < 0.97 else TRANSPORT_ERROR if roll < 0.99 else INVALID_RESPONSE
        ok = outcome == SUCCESS
        transport = outcome == TRANSPORT_ERROR
        env = envs[i % 3]
        out.append(LogRecord(
            time=T0 + timedelta(milliseconds=37 * i),
            environment=env,
            product="payment",
            endpoint=env,
            url="https://kronos-stage.ifortepay.id/auth/merchants/v1.0/access-token/b2b",
            attempt=1 + (i % 7 == 0),
            outcome=outcome,
            latency_ms=None if transport else rng.lognormvariate(3, 0.4),
            http_status=None if transport else (200 if ok else 401),
            response_code=None if transport else ("2007300" if ok else "4017300"),
            response_message=None if transport else ("Successful" if ok else "Unauthorized. Invalid signature"),
            connect_ms=rng.random() * 3 if i % 10 == 0 else None,
            wait_ms=rng.lognormvariate(2.5, 0.4),
            read_ms=rng.random(),
            request_bytes=54,
            response_bytes=None if transport else 240,
            server_timestamp=None if transport else "2026-01-20T10:00:00+07:00",
            clock_offset_s=0.25,
            error_type="ConnectionFailedError" if transport else None,
            error="connection refused" if transport else None,
            will_retry=transport,
            client_key=CLIENT_KEY,
            timestamp="2026-01-20T10:00:00+07:00",
            signature=sig,
            token=tok if ok else None,
        ))
    return out


def run(ctx: Context) -> list[Row]:
    import pandas as pd

    from snapbook.log import _NAMES

    n = ctx.size(100_000, 10_000)
    records = make_records(n)
    dicts = [{name: getattr(r, name) for name in _NAMES} for r in records]

    def with_log():
        log = RequestLog()
        for r in records:
            log.append(r)
        return log.to_dataframe()

    def bare():
        return pd.DataFrame(dicts)

    table = compare(
        AREA, f"append {n:,} rows + to_dataframe(), vs DataFrame(list of {n:,} dicts)",
        timed(with_log), timed(bare),
        a_label="RequestLog", b_label="pd.DataFrame(dicts)",
        rounds=ctx.size(9, 3), budget_s=ctx.budget_s,
    ).check("<= 1.5")

    memory = RequestLog()
    with RequestLog(ctx.tmp / "bench-log.jsonl") as on_disk:
        per_row = compare_ops(
            AREA, "JSON-lines persistence: append one row to RequestLog(path), vs RequestLog() in memory",
            lambda: on_disk.append(records[0]), lambda: memory.append(records[0]),
            a_label="with path (flushed per row)", b_label="in memory",
            n=ctx.size(4000, 500), rounds=ctx.size(5, 2), budget_s=ctx.budget_s,
        )
    per_row.note = "A = cost per persisted row"
    memory.clear()
    with RequestLog(ctx.tmp / "bench-log-fsync.jsonl", fsync=True) as synced:
        durable = compare_ops(
            AREA, "fsync=True: append one row, vs RequestLog() in memory",
            lambda: synced.append(records[0]), lambda: memory.append(records[0]),
            a_label="fsync per row", b_label="in memory",
            n=ctx.size(100, 20), rounds=ctx.size(3, 1), budget_s=ctx.budget_s, min_rounds=1,
        )
    durable.note = "depends on the disk"
    return [table, per_row, durable]

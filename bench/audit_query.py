"""The auditor's question "who touched this design?" against a million-event chain on PostgreSQL.

A lab's chain is grown to `--events` events (bulk, correctly chained: `bench/audit_population.py`) in a
throw-away schema; a real `dentgate serve` process runs on it; a manager logs in, and `--queries` queries
by random design id go through the HTTP API (`GET /api/v1/audit/events?design=…`, as `dentgate audit query
--design` sends them: key proof, session check, the query, and the query's own audit event). The latency of
each is taken at the client; the table shows p50 and p95, and the plan PostgreSQL chose.

Target: p95 under 50 ms. Exit status 1 otherwise.

    python bench/audit_query.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time

import sqlalchemy as sa
from audit_export import audit_gateway
from harness import print_result, say

TARGET_P95_MS = 50.0
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def plan(database_url: str, design: str) -> str:
    engine = sa.create_engine(database_url)
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("EXPLAIN SELECT * FROM audit_events WHERE target = :t ORDER BY seq LIMIT 100"), {"t": design}
        )
        text = " / ".join(row[0].strip() for row in rows)
    engine.dispose()
    return text


def run(events: int, queries: int, database_url: str) -> dict:
    with audit_gateway(events, database_url) as (_, manager, designs, _, url_for_run):
        rng = random.Random(7)  # noqa: S311 (a reproducible sample of designs)
        for design in rng.sample(designs, 10):  # warm-up: connections, caches
            manager.get(f"/api/v1/audit/events?design={design}")
        baseline = []
        for _ in range(50):  # an authenticated request that does nothing: the fixed cost of a call
            started = time.perf_counter()
            manager.get("/api/v1/me")
            baseline.append((time.perf_counter() - started) * 1000)
        latencies, returned = [], 0
        for design in rng.sample(designs, queries):
            started = time.perf_counter()
            page = manager.get(f"/api/v1/audit/events?design={design}&limit=100")
            latencies.append((time.perf_counter() - started) * 1000)
            returned += len(page["events"])
        chosen_plan = plan(url_for_run, f"design:{designs[0]}")
    latencies.sort()
    p95 = latencies[int(0.95 * (len(latencies) - 1))]
    return {
        "database": "postgresql",
        "events_in_chain": events,
        "queries": queries,
        "events_per_answer_mean": round(returned / queries, 1),
        "p50_ms": round(statistics.median(latencies), 1),
        "p95_ms": round(p95, 1),
        "max_ms": round(latencies[-1], 1),
        "authenticated_no_op_p50_ms": round(statistics.median(baseline), 1),
        "target_met": p95 < TARGET_P95_MS,
        "plan": chosen_plan,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    say(f"Growing a chain of {args.events:,} events on {args.database_url.split('@')[-1]} …")
    result = run(args.events, args.queries, args.database_url)
    print_result(result, args.json)
    return 0 if result["target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())

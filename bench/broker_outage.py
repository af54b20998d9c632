"""How long a broker outage delays runs: Redis stopped under a busy worker and beat, then started again.

    .venv/bin/python bench/broker_outage.py [--outages 5,30,90] [--backlog 30] [--during 10]

The bench starts its own redis-server on a free loopback port, without persistence (the worst case:
a restart loses every waiting message), a worker (`--concurrency 10`), beat and the simulator
(each call takes 2 s). For each outage length: `backlog` runs are handed to Redis (10 in flight, the
rest waiting in Redis), Redis is killed (the waiting messages are lost), `during` runs are submitted
while it is down (stored, not handed over), and Redis is started again after the outage. Nothing
but the deployed processes acts: beat's reaper hands over what no message carries.

Reported per group, in seconds from Redis answering again: to the portal handing the run over to
Redis (`enqueued_at`) and to a worker claiming it (`sending_at`; the last ones also wait for a free
thread: 40 runs of 2 s on 10 threads), p50 and max (PostgreSQL's clock, the same machine's); and
whether every run ended and was sent once.
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import harness as h
from tests.servers import OwnRedis

CALL_SECONDS = 2.0
WORKER_THREADS = 10


def submit(data: dict, count: int) -> list[str]:
    from actions.runs.submit import run_submit

    return [
        str(run_submit(user=data["user"], action=data["dispatch_action"], device=data["device"], params={}).pk)
        for _ in range(count)
    ]


def one_outage(bench, redis_server, data, *, seconds: float, backlog: int, during: int) -> dict:
    from actions.models import Run

    bench.sim("POST", "/_sim/reset")
    handed = submit(data, backlog)
    time.sleep(0.5)  # the worker takes its first messages; the rest wait in Redis
    gone = time.time()
    redis_server.kill()
    stored = submit(data, during)
    time.sleep(seconds)
    back = redis_server.start()
    final, total = h.wait_final(handed + stored, timeout=300)
    times = h.run_times(handed + stored)
    enqueued = {
        str(pk): at.timestamp()
        for pk, at in Run.objects.filter(pk__in=handed + stored).values_list("pk", "enqueued_at")
        if at is not None
    }
    requests = [r["body"]["requestUid"] for r in bench.sim("GET", "/_sim/requests")]
    in_flight = {pk for pk in handed if times[pk]["sending_at"] and times[pk]["sending_at"] < gone}
    lost = [pk for pk in handed if pk not in in_flight]

    def delays(ids):
        claimed = [times[pk]["sending_at"] - back for pk in ids if times[pk]["sending_at"]]
        handed_over = [enqueued[pk] - back for pk in ids if pk in enqueued]
        return {
            "handed_over_p50": h.median(handed_over) if handed_over else None,
            "handed_over_max": max(handed_over) if handed_over else None,
            "claimed_p50": h.median(claimed) if claimed else None,
            "claimed_max": max(claimed) if claimed else None,
        }

    return {
        "outage_seconds": seconds,
        "final": final,
        "total": total,
        "sent_once": all(requests.count(pk) == 1 for pk in handed + stored),
        "in_flight_at_outage": len(in_flight),
        "lost_in_redis": {"runs": len(lost), **delays(lost)},
        "submitted_during": {"runs": len(stored), **delays(stored)},
        "unknown": Run.objects.filter(pk__in=handed + stored, status=Run.Status.UNKNOWN).count(),
    }


def main() -> None:
    outages = [
        float(x)
        for x in (sys.argv[sys.argv.index("--outages") + 1] if "--outages" in sys.argv else "5,30,90").split(",")
    ]
    backlog, during = h.arg_int("--backlog", 30), h.arg_int("--during", 10)
    bench = h.Bench("broker_outage")
    data = h.seed(bench, visible=2, hidden=0, dispatch_latency=CALL_SECONDS)
    redis_server = OwnRedis(bench.var_dir)
    redis_server.start()
    env = bench.env | {"CELERY_BROKER_URL": redis_server.url}
    from portal.celery import app

    app.conf.broker_url = redis_server.url
    app._pool = app.amqp._producer_pool = None
    bench.start_simulator()
    bench.env = env
    bench.start_worker("worker", concurrency=WORKER_THREADS)
    beat_log = bench.log_dir / "broker_outage-beat.log"
    bench.start(
        "beat",
        [h.PYTHON, "-m", "celery", "-A", "portal", "beat", "--loglevel", "INFO", "-s", str(bench.var_dir / "beat")],
        lambda: beat_log.exists() and "Starting" in beat_log.read_text(),
    )
    results = []
    try:
        for seconds in outages:
            h.log(f"outage of {seconds:.0f} s")
            results.append(one_outage(bench, redis_server, data, seconds=seconds, backlog=backlog, during=during))
            h.log(str(results[-1]))
    finally:
        bench.stop_all()
        redis_server.kill()
    rows = []
    for r in results:
        row = [f"{r['outage_seconds']:.0f}", f"{r['final']}/{r['total']}", "yes" if r["sent_once"] else "NO"]
        for group in ("lost_in_redis", "submitted_during"):
            g = r[group]
            row.append(f"{g['runs']}: {g['handed_over_p50']:.1f}/{g['handed_over_max']:.1f}")
            row.append(f"{g['claimed_p50']:.1f}/{g['claimed_max']:.1f}")
        rows.append(row)
    headers = ["outage s", "final", "each sent once", "lost: handed over p50/max s", "lost: claimed p50/max s"]
    print(h.table(headers + ["during: handed over p50/max s", "during: claimed p50/max s"], rows))
    bench.save({"call_seconds": CALL_SECONDS, "backlog": backlog, "during": during, "outages": results})


if __name__ == "__main__":
    main()

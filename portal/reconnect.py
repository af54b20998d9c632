"""The worker's consumer, trying the broker again every 2 s at most while it is away.

Celery's consumer reconnects with kombu's default back-off (2 s, then 2 s more at each try, up to
30 s): after an outage of a minute the worker may notice the broker's return half a minute late,
and every run waits that long. Trying every 1-2 s costs one connection attempt per 2 s meanwhile.
"""

from functools import partial

from celery.worker.consumer import Consumer as CeleryConsumer

RECONNECT_MAX_SECONDS = 2


class Consumer(CeleryConsumer):
    def ensure_connected(self, conn):
        conn.ensure_connection = partial(
            conn.ensure_connection, interval_start=1, interval_step=1, interval_max=RECONNECT_MAX_SECONDS
        )
        return super().ensure_connected(conn)

"""kombu's Redis transport, with one narrow fix so that a Redis restart does not kill the worker.

The bug (kombu 5.7.0, kombu/transport/redis.py, Channel._connparams, line 1959; the same code path
as kombu#582 and kombu#970): when Redis goes away, Celery closes the broker connection
(celery/worker/consumer/consumer.py, on_connection_error_after_connected) and kombu's
Channel.close() restores the unacknowledged messages (virtual/base.py, QoS.restore_unacked_once).
That needs a new Redis client, but the transport has already dropped its connection info, so
`self.connection.client.hostname` raises AttributeError. Celery's `ignore_errors` only swallows
connection errors, so the AttributeError becomes "Unrecoverable error" and the worker exits.

The fix: with no connection info left, say so with the connection error the transport already
declares. Celery then ignores it as intended and reconnects. What restoring would have done is
done anyway: messages still in Redis' unacknowledged set come back after the visibility timeout,
and messages Redis lost in the restart are the reaper's job (actions/runs/reaper.py).
"""

from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    def _connparams(self, asynchronous=False):
        if self.connection.client is None:
            raise kombu_redis.get_redis_ConnectionError()("the broker connection is already closed")
        return super()._connparams(asynchronous=asynchronous)


class Transport(kombu_redis.Transport):
    Channel = Channel

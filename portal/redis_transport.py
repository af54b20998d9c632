"""kombu's Redis transport, with one narrow fix so that a Redis restart does not kill the worker.

The bug (kombu 5.7.0 with celery 5.7.0, the latest of both; the same code path as kombu#582 and
kombu#970). When Redis goes away, Celery's consumer (celery/worker/consumer/consumer.py,
on_connection_error_after_connected) first calls `connection.collect()`, which tries to close the
channel, fails in `_brpop_read` on the dead socket, and then sets the transport's `client` to None
(kombu/connection.py, _do_close_transport). It then calls `connection.close()`, which closes the
channel again; this time Channel.close() (kombu/transport/redis.py) drops the channel's connection
pool (`_disconnect_pools`) and then restores the unacknowledged messages
(virtual/base.py, QoS.restore_unacked_once -> redis.py, QoS.restore_unacked). That needs a new pool,
built from `self.connection.client.hostname` (redis.py, Channel._connparams, line 1959), and the
client is None: AttributeError. Celery's `ignore_errors` only swallows connection errors, so it
becomes "Unrecoverable error" and the worker exits. The same line fails again later when a task
that was running during the outage is acknowledged on its (closed) channel.

The fix: a channel remembers the parameters of the last pool it built for commands (the
synchronous one; the one that BRPOPs is never needed again on a closed channel) and builds the new
pool from them when the transport has dropped its client. So:
- closing while Redis is down fails with the transport's own connection error, which Celery
  ignores as intended; it reconnects when Redis is back;
- a run that was in flight across the restart is acknowledged once Redis is back, so Redis holds no
  copy to hand out again after the visibility timeout (it would be a no-op: the run is claimed);
- a countdown retry that the worker dropped while reconnecting is still in Redis' unacknowledged
  set and comes back after the visibility timeout; long before that the reaper re-sends the run
  (actions/runs/reaper.py); whichever comes second finds the run claimed and does nothing.
With no remembered parameters (a channel that never reached Redis), it raises that connection
error rather than AttributeError.
"""

from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    _command_connparams: dict | None = None

    def _connparams(self, asynchronous=False):
        if self.connection.client is None:  # the transport is closed: see the module's docstring
            if asynchronous or self._command_connparams is None:
                raise kombu_redis.get_redis_ConnectionError()("the broker connection is already closed")
            return dict(self._command_connparams)
        params = super()._connparams(asynchronous=asynchronous)
        if not asynchronous:
            self._command_connparams = dict(params)
        return params


class Transport(kombu_redis.Transport):
    Channel = Channel

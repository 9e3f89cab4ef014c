"""How every app sends a task to the worker: one set of options.

Nobody reads these tasks' results, and a send must not hold up the request or upload
whose commit it follows while the broker is away: without ``ignore_result`` each send
subscribes to the Redis result backend, which retries for about 20 s when Redis is down
(the events API took 4-20 s per batch during an outage: bench/faults.py); kombu's
connection failover behind ``retry=False`` waited 6 s. One immediate reconnect (a pooled
connection that a Redis restart dropped), then give up: what could not be sent is picked
up by the safety nets (the scheduled fold every minute, the stale-import sweep; the job
row is the outbox), or, for a notice, is logged.
"""

from __future__ import annotations

SEND_OPTIONS = {
    "ignore_result": True,
    "retry": True,
    "retry_policy": {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2},
}

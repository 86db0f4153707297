"""The web server's gunicorn worker: gthread, with each keep-alive connection closed after a
number of requests (nginx's ``keepalive_requests``).

A keep-alive connection stays on the worker process that accepted it. A few SDK clients that post
without pause (an error storm, a replay) would otherwise keep all their connections on whichever
worker woke first, and one worker's interpreter lock would serve them while the other cores idle.
Closing a connection after ``REQUESTS_PER_CONNECTION`` requests makes the client reconnect, and
the new connection goes to whichever worker accepts it. gunicorn ignores a ``Connection: close``
header set by the application, so this is done in the worker: the request is marked to close,
and gunicorn then answers with ``Connection: close`` and closes the socket after the response.
"""

from __future__ import annotations

from typing import Any

from gunicorn.workers.gthread import ThreadWorker

REQUESTS_PER_CONNECTION = 100
WORKER_CLASS = "bastion.gunicorn_worker.RecyclingThreadWorker"


class RecyclingThreadWorker(ThreadWorker):
    def handle_request(self, req: Any, conn: Any) -> Any:
        served = getattr(conn, "bastion_requests_served", 0) + 1
        conn.bastion_requests_served = served
        if served >= REQUESTS_PER_CONNECTION:
            req.must_close = True
        return super().handle_request(req, conn)

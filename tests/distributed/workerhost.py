"""`[core] hostname_callable` of the test cluster: the worker's own name.

Both Celery workers of the test run on one machine; each gets `BDS_WORKER_NAME` in its
environment, so the task instances it runs record which worker ran them.
"""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    return os.environ.get("BDS_WORKER_NAME") or socket.getfqdn()

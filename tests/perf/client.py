"""HTTP for the bench: one kept-alive connection per thread and server, JSON in and out,
and a thread pool that runs a call per item with a fixed number in flight.

Only the standard library, so the driver runs on the system's python3. The standalone
Ironic resets new connections beyond about 15 at once (its API server has a small listen
backlog), so a connection refused or reset before an answer is retried after a short pause;
the retries are counted, and the bench prints them.
"""

import http.client
import json
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

RETRIES = 20
RETRY_PAUSE_S = 0.05


class Http:
    """A JSON client for one server (`base`, e.g. http://127.0.0.1:6385)."""

    def __init__(self, base, headers=None, timeout=120):
        parsed = urllib.parse.urlsplit(base)
        self.base = base.rstrip("/")
        self.host = parsed.hostname
        self.port = parsed.port
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.local = threading.local()
        self.retries = 0
        self.lock = threading.Lock()

    def _connection(self):
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self.local.conn = conn
        return conn

    def _drop(self):
        conn = getattr(self.local, "conn", None)
        if conn is not None:
            conn.close()
        self.local.conn = None

    def request(self, method, path, body=None, headers=None):
        """(status, decoded JSON body or None)."""
        data = None if body is None else json.dumps(body).encode()
        all_headers = dict(self.headers)
        if data is not None:
            all_headers["Content-Type"] = "application/json"
        all_headers.update(headers or {})
        for attempt in range(RETRIES + 1):
            try:
                conn = self._connection()
                conn.request(method, path, body=data, headers=all_headers)
                response = conn.getresponse()
                raw = response.read()
                if response.getheader("Connection", "").lower() == "close":
                    self._drop()
                break
            except (ConnectionError, http.client.HTTPException, OSError):
                self._drop()
                if attempt == RETRIES:
                    raise
                with self.lock:
                    self.retries += 1
                time.sleep(RETRY_PAUSE_S * (attempt + 1))
        try:
            decoded = json.loads(raw) if raw else None
        except ValueError:
            decoded = raw.decode(errors="replace")
        return response.status, decoded

    def call(self, method, path, body=None, expect=(200,), headers=None):
        """The decoded body; an exception naming the call unless the status is expected."""
        status, decoded = self.request(method, path, body, headers)
        if status not in expect:
            raise RuntimeError(f"{method} {self.base}{path}: {status} {decoded}")
        return decoded


def pool(items, fn, in_flight):
    """fn(item) for every item, `in_flight` at a time; the results in the items' order."""
    with ThreadPoolExecutor(max_workers=in_flight) as executor:
        return list(executor.map(fn, items))


def wait_for(what, check, deadline_s, pause_s=0.05):
    """Calls check() until it returns something true; that value, or an error naming `what`
    after deadline_s."""
    end = time.monotonic() + deadline_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > end:
            raise RuntimeError(f"timed out after {deadline_s} s waiting for {what}")
        time.sleep(pause_s)

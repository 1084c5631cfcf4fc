"""A real Prometheus Alertmanager (Debian's ``prometheus-alertmanager``) for the tests, and a local
webhook receiver for its notifications.

:class:`Alertmanager` writes a config (by default the repository's starter config,
``deploy/alertmanager/alertmanager.yml``, with its receiver's URL and group timings changed for a test),
runs the binary on a free loopback port with its own storage folder and no cluster, and waits until
``/-/ready`` answers. :class:`WebhookReceiver` is an HTTP server on a loopback port that records every
notification Alertmanager POSTs (its webhook JSON, version 4).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from harness.waiting import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTER_CONFIG = REPO_ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
BINARY = "prometheus-alertmanager"


class AlertmanagerUnavailable(RuntimeError):
    """The binary is not installed (``apt-get install prometheus-alertmanager``)."""


class WebhookReceiver:
    """Records the notifications POSTed to ``url``; :meth:`wait` blocks until a condition holds."""

    def __init__(self) -> None:
        self.notifications: list[dict[str, Any]] = []
        self.changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.changed:
                    receiver.notifications.append(json.loads(body))
                    receiver.changed.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/alerts"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def alerts(self) -> list[dict[str, Any]]:
        """Every alert of every notification so far, in arrival order."""
        with self.changed:
            return [alert for n in self.notifications for alert in n["alerts"]]

    def wait(self, check: Any, timeout: float = 60.0) -> bool:
        with self.changed:
            return bool(self.changed.wait_for(check, timeout))

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class Alertmanager:
    """One Alertmanager process on ``127.0.0.1:<free port>``; ``url`` is its base URL."""

    def __init__(
        self,
        *,
        receiver_url: str,
        group_wait: str = "1s",
        group_interval: str = "1s",
        startup_timeout: float = 60.0,
    ) -> None:
        binary = shutil.which(BINARY)
        if binary is None:
            raise AlertmanagerUnavailable(f"{BINARY} is not on PATH: apt-get install prometheus-alertmanager")
        self._binary = binary
        self._dir = Path(tempfile.mkdtemp(prefix="alertmanager-"))
        config = yaml.safe_load(STARTER_CONFIG.read_text(encoding="utf-8"))
        config["route"].update(group_wait=group_wait, group_interval=group_interval)
        for receiver in config["receivers"]:
            for webhook in receiver.get("webhook_configs", []):
                webhook["url"] = receiver_url
        self.config_path = self._dir / "alertmanager.yml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log = self._dir / "alertmanager.log"

    def start(self) -> Alertmanager:
        with self._log.open("wb") as out:
            self._process = subprocess.Popen(
                [
                    self._binary,
                    f"--config.file={self.config_path}",
                    f"--storage.path={self._dir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--cluster.listen-address=",
                    "--log.level=warn",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + self._startup_timeout
        while not self._ready():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"alertmanager did not start:\n{self.log_text()[-3000:]}")
            time.sleep(0.1)
        return self

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def log_text(self) -> str:
        return self._log.read_text(encoding="utf-8", errors="replace") if self._log.exists() else ""

    # -- the API v2 ------------------------------------------------------------------------------------
    def api(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(f"{self.url}/api/v2{path}", data=data, method=method)
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read()
        return json.loads(text) if text else None

    def alerts(self, **filters: str) -> list[dict[str, Any]]:
        """``GET /api/v2/alerts`` (active, silenced and inhibited alerts; ``filter`` by label matchers)."""
        query = "&".join(f"filter={urllib.request.quote(f'{k}={json.dumps(v)}')}" for k, v in filters.items())
        result: list[dict[str, Any]] = self.api("GET", "/alerts" + (f"?{query}" if query else ""))
        return result

    def silence(self, *, matchers: dict[str, str], starts: str, ends: str, comment: str) -> str:
        """Create a silence on equality ``matchers``; return its id."""
        body = {
            "matchers": [
                {"name": k, "value": v, "isRegex": False, "isEqual": True} for k, v in matchers.items()
            ],
            "startsAt": starts,
            "endsAt": ends,
            "createdBy": "tests",
            "comment": comment,
        }
        answer = self.api("POST", "/silences", body)
        return str(answer["silenceID"])

    def close(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
        shutil.rmtree(self._dir, ignore_errors=True)

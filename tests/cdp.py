"""A small Chrome DevTools Protocol driver for the dashboard's browser tests.

It starts Debian's headless ``chromium`` with a fresh profile and a DevTools port, talks to
one page over a websocket (``websocket-client``), and offers what the tests need: navigate,
evaluate JavaScript, wait for a condition inside the page (a promise resolved by DOM
mutations, not polling), accept ``confirm()`` dialogs and take screenshots.
"""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import tempfile
import threading
import urllib.request
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
    "--window-size=1280,900",
)


def missing() -> str | None:
    """Why the browser tests cannot run here (None: they can)."""
    if CHROMIUM is None:
        return "chromium is not installed (apt-get install -y chromium; .ci/run does)"
    try:
        import websocket  # noqa: F401
    except ImportError:
        return "websocket-client is not installed (pip install -e '.[test]')"
    return None


class Browser:
    """One headless chromium; `close` ends it and removes its profile."""

    def __init__(self) -> None:
        assert CHROMIUM is not None
        self.profile = tempfile.mkdtemp(prefix="rnix-chromium-")
        self.proc = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.port = self._devtools_port()

    def _devtools_port(self) -> int:
        assert self.proc.stderr is not None
        found: list[int] = []
        done = threading.Event()

        def read() -> None:
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                if "DevTools listening on ws://" in line and not found:
                    found.append(int(line.split("ws://127.0.0.1:")[1].split("/")[0]))
                    done.set()
            done.set()

        threading.Thread(target=read, daemon=True).start()
        if not done.wait(30) or not found:
            self.close()
            raise RuntimeError("chromium did not open its DevTools port")
        return found[0]

    def page(self) -> Page:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list", timeout=10) as r:
            targets = json.load(r)
        url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        return Page(url)

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        shutil.rmtree(self.profile, ignore_errors=True)


class Page:
    """One page's DevTools session. Dialogs (``confirm``) are accepted and remembered."""

    def __init__(self, ws_url: str) -> None:
        import websocket

        self.ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self.ids = itertools.count(1)
        self.dialogs: list[str] = []
        self.events: list[dict[str, Any]] = []
        self.send("Page.enable")
        self.send("Runtime.enable")
        self.send(
            "Emulation.setDeviceMetricsOverride",
            width=1280,
            height=900,
            deviceScaleFactor=1,
            mobile=False,
        )

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self.ids)
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            self._event(message)

    def _event(self, message: dict[str, Any]) -> None:
        self.events.append(message)
        if message.get("method") == "Page.javascriptDialogOpening":
            self.dialogs.append(message["params"]["message"])
            call_id = next(self.ids)
            self.ws.send(
                json.dumps(
                    {
                        "id": call_id,
                        "method": "Page.handleJavaScriptDialog",
                        "params": {"accept": True},
                    }
                )
            )

    def _wait_event(self, name: str) -> dict[str, Any]:
        while True:
            message = json.loads(self.ws.recv())
            self._event(message)
            if message.get("method") == name:
                return message

    def goto(self, url: str) -> None:
        """Navigate and wait for the load event."""
        self.events.clear()
        self.send("Page.navigate", url=url)
        if not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            self._wait_event("Page.loadEventFired")

    def js(self, expression: str) -> Any:
        """Evaluate ``expression`` (promises awaited) and return its value."""
        answer = self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in answer:
            raise RuntimeError(f"{expression}: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    def wait_for(self, condition: str, timeout: float = 15.0) -> Any:
        """Wait until the JavaScript ``condition`` is truthy: checked now and after every DOM
        change; raises after ``timeout`` seconds."""
        ms = int(timeout * 1000)
        value = self.js(
            "new Promise((resolve, reject) => {"
            f"  const check = () => {{ try {{ return !!({condition}); }}"
            "                          catch (e) { return null; } };"
            "  const first = check(); if (first) { resolve(first); return; }"
            "  const observer = new MutationObserver(() => {"
            "    const v = check(); if (v) { observer.disconnect(); resolve(v); } });"
            "  observer.observe(document, {subtree: true, childList: true, attributes: true,"
            "                               characterData: true});"
            f"  setTimeout(() => {{ observer.disconnect(); resolve(check() || null); }}, {ms});"
            "})"
        )
        if not value:
            raise AssertionError(f"not true within {timeout}s: {condition}")
        return value

    def screenshot(self, path: Path) -> Path:
        """The whole page (up to 3000 px tall) as a PNG."""
        metrics = self.send("Page.getLayoutMetrics")
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        height = min(max(900, int(size["height"])), 3000)
        shot = self.send(
            "Page.captureScreenshot",
            format="png",
            captureBeyondViewport=True,
            clip={"x": 0, "y": 0, "width": 1280, "height": height, "scale": 1},
        )
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def close(self) -> None:
        self.ws.close()

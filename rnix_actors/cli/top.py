"""``rnix top``: a full-screen live view of the process tree (prompt_toolkit).

One worker thread talks to the API (the daemon's socket, or an embedded system): it refreshes
the snapshot every ``interval`` seconds and runs the signals the keys ask for, so the screen
never waits on a call. The screen draws `top_model` rows; only the rows that fit are drawn.

Keys: ↑/↓ (or j) move, PgUp/PgDn page, ``k`` SIGTERM, ``K`` SIGKILL, ``p`` pause, ``r``
resume, Enter inspect (Esc back), ``/`` filter (Enter keeps it, Esc clears it), ``q`` quit.
The inspect pane follows the process (it is fetched again at every refresh) and scrolls:
↑/↓ (or k/j), PgUp/PgDn, Home/End (or g/G).
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

import attrs
from prompt_toolkit.application import Application
from prompt_toolkit.buffer import Buffer
from prompt_toolkit.filters import Condition
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.layout import ConditionalContainer, HSplit, Layout, Window
from prompt_toolkit.layout.controls import BufferControl, FormattedTextControl
from prompt_toolkit.styles import Style

from rnix_actors.cli.render import inspect_text
from rnix_actors.cli.top_model import HEADER, TopRow, build_rows, column_widths, counts
from rnix_actors.ipc.local import Api
from rnix_actors.ipc.protocol import ApiError, process_from_wire
from rnix_actors.kernel.process import ProcessInfo

STYLE = Style.from_dict(
    {
        "header": "reverse",
        "running": "ansigreen",
        "suspended": "ansiyellow",
        "failed": "ansired",
        "warn": "ansired bold",
        "selected": "reverse",
        "status": "ansicyan",
        "title": "bold",
    }
)
KEYS_HELP = "↑↓ move  k TERM  K KILL  p pause  r resume  enter inspect  / filter  q quit"
DETAIL_HELP = "↑↓ PgUp PgDn Home End scroll  Esc or q back"


@attrs.define
class Snapshot:
    procs: list[ProcessInfo] = attrs.field(factory=list)
    alerts: dict[int, str] = attrs.field(factory=dict)
    supervised: dict[int, str] = attrs.field(factory=dict)
    immune: str = ""
    source: str = ""
    error: str = ""


def fetch(api: Api) -> Snapshot:
    """One snapshot of what top shows, from ``api`` (never raises: errors are shown)."""
    snap = Snapshot(source=getattr(api, "kind", "api"))
    try:
        snap.procs = [process_from_wire(p) for p in api.call("ps")["processes"]]
    except ApiError as exc:
        snap.error = exc.message
        return snap
    try:
        status = api.call("immune_status")["status"]
        snap.immune = str(status.get("mode", ""))
        for alert in status.get("alerts") or []:
            snap.alerts.setdefault(int(alert["pid"]), f"⚠ {alert.get('message', '')}")
    except (ApiError, KeyError, TypeError, ValueError):
        snap.immune = "unavailable"
    try:
        for view in api.call("tree", processes=False)["supervisors"]:
            _supervised(view, snap.supervised)
    except (ApiError, KeyError, TypeError):
        pass
    return snap


def _supervised(view: dict[str, Any], into: dict[int, str]) -> None:
    for child in view.get("children") or []:
        if child.get("pid") is not None:
            into[int(child["pid"])] = f"sup {child.get('path', '')}"
        if child.get("supervisor"):
            _supervised(child["supervisor"], into)


class Top:
    """The full-screen view; `run` blocks until ``q``."""

    def __init__(self, api: Api, interval: float = 1.0, **app_options: Any) -> None:
        self.api = api
        self.interval = interval
        self.snapshot = Snapshot()
        self.rows: list[TopRow] = []
        self.selected = 0
        self.top_line = 0
        self.status = ""
        self.detail: str | None = None
        self.inspecting: int | None = None  # the pid the inspect pane shows
        self.detail_top = 0  # the first line of the pane on screen
        self.filtering = False
        self.filter = Buffer(multiline=False, on_text_changed=lambda _: self._rebuild())
        self._actions: queue.Queue[tuple[str, int] | None] = queue.Queue()
        self._stop = threading.Event()
        self.app: Application[None] = Application(
            layout=self._layout(),
            key_bindings=self._keys(),
            style=STYLE,
            full_screen=True,
            **app_options,
        )

    # -- worker ------------------------------------------------------------------------------
    def _worker(self) -> None:
        while not self._stop.is_set():
            try:
                action = self._actions.get(timeout=self.interval)
            except queue.Empty:
                action = None
            if self._stop.is_set():
                return
            if action is not None:
                self._act(*action)
            elif self.inspecting is not None:
                self._inspect(self.inspecting)
            self.snapshot = fetch(self.api)
            self._rebuild()

    def _act(self, what: str, pid: int) -> None:
        if what == "inspect":
            self._inspect(pid)
            return
        try:
            result = self.api.call("kill", pid=pid, signal=what)
            self.status = f"PID {pid}: {what} — {result['outcome']}"
        except ApiError as exc:
            self.status = f"PID {pid}: {exc.message}"

    def _inspect(self, pid: int) -> None:
        try:
            text = inspect_text(self.api.call("inspect", pid=pid, tail=20))
        except ApiError as exc:
            text = f"PID {pid}: {exc.message}"
        if self.inspecting == pid:  # not closed (Esc) while the call was in flight
            self.detail = text

    def _rebuild(self) -> None:
        snap = self.snapshot
        self.rows = build_rows(snap.procs, snap.alerts, snap.supervised, self.filter.text)
        self.selected = min(self.selected, max(0, len(self.rows) - 1))
        self.app.invalidate()

    # -- drawing -----------------------------------------------------------------------------
    def _header(self) -> StyleAndTextTuples:
        snap = self.snapshot
        c = counts(snap.procs)
        cost = f", ${c.cost:.4f}" if c.cost else ""
        text = (
            f" rnix top — {snap.source}  {c.total} processes ({c.running} running, "
            f"{c.suspended} suspended)  {c.tokens:,} tokens{cost}  immune: {snap.immune or '-'}"
        )
        if self.filter.text:
            text += f"  filter: {self.filter.text!r}"
        return [("class:title", text + "\n")]

    def _body(self) -> StyleAndTextTuples:
        if self.detail is not None:
            return self._detail_body()
        if self.snapshot.error:
            return [("class:failed", f" {self.snapshot.error}")]
        if not self.rows:
            return [("", " No live processes." if not self.filter.text else " Nothing matches.")]
        now = time.time()
        height = max(1, self._height() - 1)
        if self.selected < self.top_line:
            self.top_line = self.selected
        elif self.selected >= self.top_line + height:
            self.top_line = self.selected - height + 1
        visible = self.rows[self.top_line : self.top_line + height]
        widths = column_widths(visible, now)
        out: StyleAndTextTuples = [("class:header", _line(HEADER, widths) + "\n")]
        for index, row in enumerate(visible, start=self.top_line):
            cells = row.cells(now)
            style = _row_style(row)
            if index == self.selected:
                style = "class:selected"
            line = _line(cells[:4], widths[:4], strip=False) + "  "
            out.append((style, line))
            token_style = "class:warn" if row.budget_warning and index != self.selected else style
            out.append((token_style, cells[4].ljust(widths[4])))
            out.append((style, "  " + _line(cells[5:], widths[5:]) + "\n"))
        return out

    def _detail_body(self) -> StyleAndTextTuples:
        lines = (self.detail or "").split("\n")
        height = max(1, self._height())
        self.detail_top = max(0, min(self.detail_top, len(lines) - height))
        shown = lines[self.detail_top : self.detail_top + height]
        return [("", "\n".join(shown))]

    def _footer(self) -> StyleAndTextTuples:
        status = [("class:status", f" {self.status}\n" if self.status else "\n")]
        if self.detail is None:
            return [*status, ("", KEYS_HELP)]
        total = self.detail.count("\n") + 1
        first = self.detail_top + 1
        last = min(total, self.detail_top + max(1, self._height()))
        return [*status, ("", f"lines {first}–{last} of {total}  {DETAIL_HELP}")]

    def _close_detail(self) -> None:
        self.detail = self.inspecting = None
        self.detail_top = 0

    def _scroll(self, lines: int) -> None:
        """Move the inspect pane by ``lines`` (the drawing clamps it to the text)."""
        total = (self.detail or "").count("\n") + 1
        self.detail_top = max(0, min(self.detail_top + lines, total - 1))

    def _height(self) -> int:
        try:
            return self.app.output.get_size().rows - 4
        except Exception:  # no terminal yet
            return 20

    def _layout(self) -> Layout:
        filter_bar = ConditionalContainer(
            HSplit([Window(BufferControl(self.filter), height=1)]),
            filter=Condition(lambda: self.filtering),
        )
        return Layout(
            HSplit(
                [
                    Window(FormattedTextControl(self._header), height=1),
                    Window(FormattedTextControl(self._body), wrap_lines=False),
                    filter_bar,
                    Window(FormattedTextControl(self._footer), height=2),
                ]
            )
        )

    # -- keys --------------------------------------------------------------------------------
    def _keys(self) -> KeyBindings:
        """``q`` and Ctrl-C, then the keys of each mode: the inspect pane, the process list
        and the filter bar."""
        kb = KeyBindings()
        filtering = Condition(lambda: self.filtering)

        @kb.add("q", filter=~filtering)
        def _quit(event: KeyPressEvent) -> None:
            if self.detail is not None:
                self._close_detail()
            else:
                event.app.exit()

        self._detail_keys(kb, Condition(lambda: self.detail is not None))

        @kb.add("c-c")
        def _interrupt(event: KeyPressEvent) -> None:
            event.app.exit()

        self._browse_keys(kb, Condition(lambda: not self.filtering and self.detail is None))
        self._filter_keys(kb, filtering)
        return kb

    def _detail_keys(self, kb: KeyBindings, detail: Condition) -> None:
        @kb.add("escape", filter=detail)
        def _back(event: KeyPressEvent) -> None:
            self._close_detail()

        for keys, lines, pages in (
            (("up", "k"), -1, 0),
            (("down", "j"), 1, 0),
            (("pageup",), 0, -1),
            (("pagedown",), 0, 1),
            (("home", "g"), -(1 << 30), 0),
            (("end", "G"), 1 << 30, 0),
        ):
            for key in keys:
                kb.add(key, filter=detail)(self._scroller(lines, pages))

    def _browse_keys(self, kb: KeyBindings, browsing: Condition) -> None:
        @kb.add("up", filter=browsing)
        def _up(event: KeyPressEvent) -> None:
            self.selected = max(0, self.selected - 1)

        @kb.add("down", filter=browsing)
        @kb.add("j", filter=browsing)
        def _down(event: KeyPressEvent) -> None:
            self.selected = min(len(self.rows) - 1, self.selected + 1) if self.rows else 0

        @kb.add("pageup", filter=browsing)
        def _page_up(event: KeyPressEvent) -> None:
            self.selected = max(0, self.selected - self._height())

        @kb.add("pagedown", filter=browsing)
        def _page_down(event: KeyPressEvent) -> None:
            self.selected = min(max(0, len(self.rows) - 1), self.selected + self._height())

        for key, action in (
            ("k", "SIGTERM"),
            ("K", "SIGKILL"),
            ("p", "SIGPAUSE"),
            ("r", "SIGRESUME"),
        ):
            kb.add(key, filter=browsing)(self._signal_handler(action))

        @kb.add("enter", filter=browsing)
        def _inspect(event: KeyPressEvent) -> None:
            if self.rows:
                pid = self.rows[self.selected].pid
                self.detail, self.inspecting, self.detail_top = "loading…", pid, 0
                self._actions.put(("inspect", pid))

        @kb.add("/", filter=browsing)
        def _filter(event: KeyPressEvent) -> None:
            self.filtering = True
            event.app.layout.focus(self.filter)

    def _filter_keys(self, kb: KeyBindings, filtering: Condition) -> None:
        @kb.add("enter", filter=filtering)
        def _keep_filter(event: KeyPressEvent) -> None:
            self.filtering = False

        @kb.add("escape", filter=filtering)
        def _clear_filter(event: KeyPressEvent) -> None:
            self.filtering = False
            self.filter.text = ""

    def _scroller(self, lines: int, pages: int) -> Any:
        def handler(event: KeyPressEvent) -> None:
            self._scroll(lines + pages * max(1, self._height()))

        return handler

    def _signal_handler(self, signal: str) -> Any:
        def handler(event: KeyPressEvent) -> None:
            if self.rows:
                pid = self.rows[self.selected].pid
                self.status = f"PID {pid}: sending {signal}…"
                self._actions.put((signal, pid))

        return handler

    # -- running -----------------------------------------------------------------------------
    def run(self) -> None:
        """Draw until ``q``; the worker thread is stopped and joined before returning."""
        worker = threading.Thread(target=self._worker, name="rnix-top", daemon=True)
        self.snapshot = fetch(self.api)
        self._rebuild()
        worker.start()
        try:
            self.app.run()
        finally:
            self._stop.set()
            self._actions.put(None)
            worker.join(10)


def _line(cells: Any, widths: Any, strip: bool = True) -> str:
    text = "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True))
    return text.rstrip() if strip else text


def _row_style(row: TopRow) -> str:
    info = row.info
    if info.finished:
        return "class:failed" if info.exit_code not in (0, None) else ""
    return f"class:{info.state}" if str(info.state) in ("running", "suspended") else ""

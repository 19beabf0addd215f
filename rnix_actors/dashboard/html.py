"""Pages as regions, whole documents, and the difference between two renders.

A page is a sequence of static HTML and *regions*. A region is a container element whose
content is either one piece of HTML (``html``) or keyed parts (``parts``: each one element
whose ``id`` is its key, such as a table row). A live update sends, per region, only what
changed: a whole region's new HTML, or the keyed parts that changed, went away or moved.
"""

from __future__ import annotations

import html as _html
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from rnix_actors.dashboard.assets import CSS, SCRIPT

NAV = (
    ("/", "Processes"),
    ("/supervision", "Supervision"),
    ("/topology", "Topology"),
    ("/immune", "Immune"),
)


def esc(value: object) -> str:
    """HTML-escape any value (quotes too: safe inside attributes)."""
    return _html.escape(str(value), quote=True)


@attrs.frozen
class Region:
    id: str
    html: str = ""
    parts: tuple[tuple[str, str], ...] | None = None
    tag: str = "div"
    cls: str = ""

    def inner(self) -> str:
        return self.html if self.parts is None else "".join(h for _, h in self.parts)

    def render(self) -> str:
        cls = f' class="{esc(self.cls)}"' if self.cls else ""
        return f'<{self.tag} id="{esc(self.id)}"{cls}>{self.inner()}</{self.tag}>'


Block = str | Region


@attrs.frozen
class Page:
    title: str
    nav: str  # the NAV path this page belongs to
    blocks: tuple[Block, ...]

    def regions(self) -> dict[str, Region]:
        return {b.id: b for b in self.blocks if isinstance(b, Region)}


def document(page: Page, *, token: str, nonce: str, stream: str, version: int) -> str:
    """The whole HTML document; ``stream`` is the page's path for the live event stream."""
    links = "".join(
        f'<a href="{path}"{" class=current" if path == page.nav else ""}>{label}</a>'
        for path, label in NAV
    )
    body = "".join(b.render() if isinstance(b, Region) else b for b in page.blocks)
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{esc(page.title)} · rnix dashboard</title>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="rnix-token" content="{esc(token)}">'
        f'<meta name="rnix-stream" content="{esc(stream)}">'
        f'<meta name="rnix-version" content="{version}">'
        f'<style nonce="{nonce}">{CSS}</style></head><body>'
        f"<header><span class=brand>rnix</span><nav>{links}</nav>"
        '<span id=live class=live-off title="live updates">●</span></header>'
        f"<main>{body}</main>"
        f'<script nonce="{nonce}">{SCRIPT}</script></body></html>'
    )


def diff(old: Mapping[str, Region], new: Mapping[str, Region]) -> dict[str, Any]:
    """What turns the regions ``old`` into ``new``: ``{region id: change}``, empty when
    nothing changed. A change is ``{"html": ...}`` or ``{"set": {key: html}, "del": [keys],
    "order": [keys]}`` (``order`` only when applying ``set`` and ``del`` would leave the
    parts in another order: the client appends new parts at the end)."""
    changes: dict[str, Any] = {}
    for rid, region in new.items():
        before = old.get(rid)
        if region.parts is None or before is None or before.parts is None:
            if before is None or before.inner() != region.inner():
                changes[rid] = {"html": region.inner()}
            continue
        change = _keyed(before.parts, region.parts)
        if change:
            changes[rid] = change
    return changes


def _keyed(old: Sequence[tuple[str, str]], new: Sequence[tuple[str, str]]) -> dict[str, Any] | None:
    before = dict(old)
    keys = [k for k, _ in new]
    now = set(keys)
    change: dict[str, Any] = {}
    updated = {k: h for k, h in new if before.get(k) != h}
    gone = [k for k, _ in old if k not in now]
    if updated:
        change["set"] = updated
    if gone:
        change["del"] = gone
    expected = [k for k, _ in old if k in now] + [k for k in keys if k not in before]
    if expected != keys:
        change["order"] = keys
    return change or None

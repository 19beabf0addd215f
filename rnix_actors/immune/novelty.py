"""Novelty weighed by risk: which calls, destinations and transitions a template has used.

A prompt-injected agent reads untrusted content and then makes a side-effecting call with a
destination it has never used: a payment to a new account, an email to a new address, a
fetch from a new host. So besides counting calls, a profile remembers *items*:

==============================  =============================================================
``call.read:<key>``             a kind of read-only call (``Read /dev/bank/get_balance``)
``call.side:<key>``             a kind of side-effecting call (``Write /dev/bank/send_money``)
``dest:<key>|<arg>=<value>``    a target of a side-effecting call: an argument that names whom
                                or what it acts on (recipient, account, id, path directory),
                                not its content (body, amount, date)
``net:<host>``                  a network host named anywhere in a call's arguments
``seq:<key>><key>``             which kind of call followed which (a transition)
==============================  =============================================================

Each item *class* has a Beta prior ``(a, b)``: how often, before any evidence, a benign run
brings a new item of that class (`rnix_actors.immune.stats.novelty_p`). A never-seen read-only
look-up is common benign variation (prior mean 1/2: after ``n`` runs its probability is still
about ``1/(n+1)``, never an alarm at the default threshold); a never-seen side-effecting call
or destination is not (prior mean 1/11). A host never seen by *any* template is as risky as a
side-effecting destination whatever the device's effect (a fetch can carry data out in its
URL); one another template has used is ordinary read-only novelty.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

CALL_READ = "call.read"
CALL_SIDE = "call.side"
DEST = "dest"
NET = "net"
SEQ = "seq"
NET_SEEN = "net.seen"  # a host new to the template but used by another one (not an item)

PRIORS: Mapping[str, tuple[float, float]] = {
    CALL_READ: (1.0, 1.0),
    CALL_SIDE: (0.1, 1.0),
    DEST: (0.1, 1.0),
    NET: (0.1, 1.0),
    NET_SEEN: (1.0, 1.0),
    SEQ: (1.0, 1.0),
}
"""Beta prior (a, b) of each novelty class: prior mean a / (a + b)."""

RISK_WEIGHT_READ = 10.0
"""A read-only finding must be this much rarer than a side-effecting one to count as high
risk (suspend in enforce mode, create a threat signature)."""

MAX_ITEMS = 4096
"""Items a profile remembers per template (beyond them, new items are not learned)."""

MAX_VALUE = 100
"""Argument values longer than this are content, not a destination."""

CONTENT_KEYS = frozenset(
    {
        "amount", "attachments", "body", "code", "command", "comment", "content", "count",
        "date", "day", "description", "duration", "end", "end_day", "end_time", "input",
        "language", "limit", "location", "message", "n", "new_end_time", "new_start_time",
        "note", "notes", "offset", "page", "permission", "price", "prompt", "query",
        "recurring", "reason", "script", "start", "start_day", "start_time", "subject", "text",
        "time", "timeout", "title", "pattern",
    }
)  # fmt: skip
"""Arguments that carry what a call says or how much, not whom it reaches."""

PATH_KEYS = frozenset({"path", "file_path", "dir", "directory", "folder"})
"""Arguments judged by their directory: a write into a new tree is new, a new file is not."""

# Each match may only start where a run of its characters starts (the lookbehinds): without
# that, a long run with no match (an agent writing 200 KB of text) costs quadratic time.
_URL = re.compile(
    r"(?:(?<![a-z0-9+.-])[a-z][a-z0-9+.-]*://|(?<![\w.-])www\.)([^/\s'\"<>?#:]+)", re.IGNORECASE
)
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def hosts(value: str) -> list[str]:
    """Network hosts named in ``value`` (``https://x.org/a`` and ``www.x.org`` → ``x.org``)."""
    if "://" not in value and "www." not in value:
        return []
    found = []
    for match in _URL.finditer(value):
        host = match.group(1).lower().rstrip(".")
        found.append(host[4:] if host.startswith("www.") else host)
    return found


def _scalars(value: Any, depth: int = 0) -> Iterator[Any]:
    if isinstance(value, list | tuple | set | frozenset) and depth < 2:
        for item in value:
            yield from _scalars(item, depth + 1)
    elif isinstance(value, str | int | float | bool) or value is None:
        yield value


def _strings(args: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    for key, value in args.items():
        if isinstance(value, Mapping):
            for inner, nested in value.items():
                yield from ((str(inner), str(v)) for v in _scalars(nested))
        else:
            yield from ((str(key), str(v)) for v in _scalars(value))


def _targets(key: str, value: str) -> Iterator[str]:
    """The destination values one argument names."""
    name = key.lower()
    emails = _EMAIL.findall(value)
    if emails:
        yield from (e.lower() for e in emails)
        return
    if name in CONTENT_KEYS or len(value) > MAX_VALUE or not value.strip():
        return
    text = value.strip().lower()
    if name in PATH_KEYS:
        yield text.rsplit("/", 1)[0] + "/" if "/" in text else "./"
    else:
        yield text


def has_host(args: Mapping[str, Any]) -> bool:
    """Whether any argument may name a network host (the cheap test before `call_items`)."""
    return any("://" in value or "www." in value for _, value in _strings(args))


def call_items(key: str, args: Mapping[str, Any], side_effecting: bool) -> tuple[str, ...]:
    """The destination and host items of one call (its call and transition items are kept
    by the run record). Only side-effecting calls have destinations."""
    items: list[str] = []
    for name, value in _strings(args):
        items += [f"{NET}:{host}" for host in hosts(value)]
        if side_effecting:
            items += [f"{DEST}:{key}|{name.lower()}={target}" for target in _targets(name, value)]
    return tuple(dict.fromkeys(items))


def call_item(key: str, side_effecting: bool) -> str:
    return f"{CALL_SIDE if side_effecting else CALL_READ}:{key}"


def seq_item(before: str, after: str) -> str:
    return f"{SEQ}:{before}>{after}"


def item_class(item: str) -> str:
    return item.partition(":")[0]


def fresh_classes(items: Iterable[str], known: frozenset[str]) -> set[str]:
    """The classes of which ``items`` hold something ``known`` lacks."""
    return {item_class(item) for item in items if item not in known}

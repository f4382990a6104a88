"""The dashboard's HTML: Jinja2 templates read from the package (``templates/``), escaped
everywhere, and the headers every page carries (a Content-Security-Policy that runs our own
files only, no framing, no caching of what a page shows)."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from tracker._version import __version__
from tracker.core.encoding import timestamp_text
from tracker.core.ids import path_segment
from tracker.core.texts import age, duration, error_line, shorten_middle
from tracker.web.auth import CSRF_FIELD
from tracker.web.views import TONE_NAMES, script_rules, state_tones, status_text

TEMPLATES = Path(str(files("tracker.web") / "templates"))
SHORT_ID = 28
COMPRESS_FROM = 1024
SECURITY_HEADERS = {
    # Scripts and styles come from our own files only; data: for the favicon-free tab icon.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def task_url(task_id: str) -> str:
    return "/tasks/" + path_segment(task_id)


def when(value: datetime | None) -> str:
    """A moment as the pages print it before the browser puts it in local time."""
    if value is None:
        return "—"
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(value: datetime | None) -> str:
    """A moment for the browser to read (``datetime`` attributes): the one timestamp format."""
    return "" if value is None else timestamp_text(value)


def since(value: datetime | None, now: datetime) -> str:
    return "" if value is None else age(now - value)


def number(value: float | int | None, digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def size(value: int | None) -> str:
    """Bytes in binary units: 256.0 KiB."""
    if value is None:
        return "—"
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{amount:,.0f} {unit}" if unit == "B" else f"{amount:,.1f} {unit}"
        amount /= 1024
    raise AssertionError("unreachable")


def pretty_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=str)


def data_json(value: Any) -> Markup:
    """JSON for a ``<script type="application/json">`` block (never run): ``<`` escaped so the
    text cannot close the element."""
    text = json.dumps(value, separators=(",", ":")).replace("<", "\\u003c")
    return Markup(text)


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(
        short_id=lambda text: shorten_middle(text, SHORT_ID),
        task_url=task_url,
        when=when,
        iso=iso,
        number=number,
        size=size,
        pretty_json=pretty_json,
        data_json=data_json,
        duration=lambda seconds: duration(timedelta(seconds=seconds)),
        error_text=lambda error: error_line(error, None),
        status_text=status_text,
    )
    environment.globals.update(
        version=__version__,
        since=since,
        csrf_field=CSRF_FIELD,
        state_tones=state_tones(),
        tone_names=TONE_NAMES,
        script_rules=script_rules(),
    )
    return environment


_ENVIRONMENT = _environment()
# Compiled once, when the app is built, rather than by the first request of each page.
for _name in _ENVIRONMENT.list_templates():
    _ENVIRONMENT.get_template(_name)


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    html = _ENVIRONMENT.get_template(template).render(request=request, **context).encode()
    sent = {**SECURITY_HEADERS, **(headers or {}), "Vary": "Accept-Encoding"}
    # A hundred rows repeat the same markup: compressed, the overview is a tenth of its size.
    if len(html) >= COMPRESS_FROM and "gzip" in request.headers.get("accept-encoding", ""):
        html = gzip.compress(html, compresslevel=5)
        sent["Content-Encoding"] = "gzip"
    return HTMLResponse(html, status_code=status, headers=sent)

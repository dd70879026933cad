"""What every form shares: how a message looks, the output area, and secrets held out of widget state.

:class:`Notice` and :func:`notice_for` are how a form (or a notebook cell) shows a result or an
error without a traceback. ``_Form`` is the base of every form: one output area, replaced as a
whole. ``_HeldSecret`` keeps a secret read from a password field in the kernel only and empties
the field, so saved widget state never holds one; the ``_held_*`` helpers make one per kind of
secret. ``_Table`` shows (name, value) rows, e.g. a response body.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import ipywidgets as W

from ..errors import SnapbookError, SnapResponseError
from ..masking import mask, printable

# --- how messages look ------------------------------------------------------------------

_COLORS = {"ok": "#1a7f37", "info": "#0969da", "warn": "#9a6700", "error": "#cf222e"}
_ICONS = {"ok": "✔", "info": "ℹ", "warn": "⚠", "error": "✖"}


@dataclass(frozen=True)
class Notice:
    """A message shown in a form: a level, a title, detail lines and a hint. Never a traceback."""

    level: str
    title: str
    details: tuple[str, ...] = ()
    hint: str = ""

    def __post_init__(self) -> None:
        # Titles and details often carry server text: escape control characters once, for every view.
        object.__setattr__(self, "title", printable(self.title))
        object.__setattr__(self, "details", tuple(printable(d) for d in self.details))
        object.__setattr__(self, "hint", printable(self.hint))

    def __repr__(self) -> str:
        lines = [f"{_ICONS.get(self.level, '')} {self.title}".strip()]
        lines += [f"  {d}" for d in self.details]
        if self.hint:
            lines.append(f"  Hint: {self.hint}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        color = _COLORS.get(self.level, "#57606a")
        parts = [f"<div style='border-left:4px solid {color};padding:2px 8px;margin:4px 0'>"]
        parts.append(f"<b style='color:{color}'>{_ICONS.get(self.level, '')} {html.escape(self.title)}</b>")
        for d in self.details:
            parts.append(f"<div>{html.escape(d)}</div>")
        if self.hint:
            parts.append(f"<div><i>Hint:</i> {html.escape(self.hint)}</div>")
        parts.append("</div>")
        return "".join(parts)


def notice_for(exc: BaseException) -> Notice:
    """How a form shows an error: what happened, what it means and what to do about it."""
    if isinstance(exc, SnapResponseError):
        code = exc.response_code or "no responseCode"
        title = f"Refused: {code}"
        if exc.response_message:
            title += f" {exc.response_message}"
        details: list[str] = []
        if exc.http_status is not None:
            details.append(f"HTTP status {exc.http_status}")
        if exc.meaning:
            details.append(f"Meaning: {exc.meaning}")
        if exc.response_code is None and exc.message:
            details.append(exc.message)  # no code to explain it: the message says what came back
        return Notice("error", title, tuple(details), exc.hint)
    if isinstance(exc, SnapbookError):
        return Notice("error", type(exc).__name__, (exc.message,), exc.hint)
    # Not ours: still no traceback, but say it is unexpected so it gets reported.
    return Notice(
        "error",
        f"Unexpected {type(exc).__name__}",
        (str(exc),) if str(exc) else (),
        "This is a snapbook bug or an environment problem; please report it with the steps that led here.",
    )


def _label(text: str) -> W.HTML:
    return W.HTML(f"<b>{html.escape(text)}</b>")


_WIDE = W.Layout(width="36em")
_AUTO = W.Layout(width="max-content")  # buttons as wide as their label
_DESC = {"description_width": "10em"}


class _Form(W.VBox):
    """Shared plumbing: one Output area, replaced as a whole, written without ``with out:``."""

    def __init__(self, children: Sequence[W.Widget], **kwargs: Any) -> None:
        self.output = W.Output()
        super().__init__([*children, self.output], **kwargs)

    def _show(self, *objects: Any) -> None:
        """Replace what the output area shows, in one update (no half-drawn results in the browser).

        Outputs are built as nbformat dicts, like ``Output.append_display_data`` does, not with
        ``with out:``, so nbval and headless tests see them too.
        """
        from IPython.core.interactiveshell import InteractiveShell

        fmt = InteractiveShell.instance().display_formatter.format
        outputs: list[dict[str, Any]] = []
        for obj in objects:
            if isinstance(obj, str):
                outputs.append({"output_type": "stream", "name": "stdout",
                                "text": obj if obj.endswith("\n") else obj + "\n"})
            else:
                data, metadata = fmt(obj)
                outputs.append({"output_type": "display_data", "data": data, "metadata": metadata})
        self.output.outputs = tuple(outputs)

    def _guard(self, action: Callable[[], Any]) -> Any:
        try:
            return action()
        except Exception as exc:
            self._show(notice_for(exc))
            return None

    @property
    def text(self) -> str:
        """Everything the output area shows, as plain text (for tests and quick checks)."""
        chunks = []
        for o in self.output.outputs:
            if o.get("output_type") == "stream":
                chunks.append(o.get("text", ""))
            else:
                chunks.append(str(o.get("data", {}).get("text/plain", "")))
        return "\n".join(chunks)


# --- secrets kept in the kernel, never in a field -------------------------------------------


class _HeldSecret:
    """A secret read from a password field and kept only in the kernel: the field is emptied at once.

    Widget state (``embed_data``, "Save Widget State", HTML exports) holds every synced value, so a
    secret left in a field ends up in files. The field shows ``placeholder`` instead, masked.
    """

    def __init__(self, field: W.Password, describe: Callable[[str], str], *, strip: bool) -> None:
        self.field, self._describe, self._empty_placeholder = field, describe, field.placeholder
        self._strip = strip  # a signature pasted with a newline is the same signature; a passphrase is exact
        self.value: str | None = None

    def take(self) -> str | None:
        """The field's value if one was typed (it becomes the held one), else the held one."""
        typed = self.field.value
        if typed:
            self.value = (typed.strip() if self._strip else typed) or None
            self.field.value = ""
            self.field.placeholder = self._describe(self.value) if self.value else self._empty_placeholder
        return self.value

    def forget(self) -> None:
        self.value = None
        self.field.placeholder = self._empty_placeholder

    def hold(self, value: str) -> None:
        """Hold a secret given from code, without ever putting it in the (synced) field."""
        self.value = value
        self.field.placeholder = self._describe(value)


def _held_passphrase(field: W.Password) -> _HeldSecret:
    return _HeldSecret(field, lambda _: "(a passphrase is held in this session; type another to replace it)",
                       strip=False)


def _held_signature(field: W.Password) -> _HeldSecret:
    return _HeldSecret(field, lambda sig: f"{mask(sig)} held; paste another to replace it", strip=True)


def _held_client_secret(field: W.Password) -> _HeldSecret:
    # Exact, like a passphrase: the library refuses whitespace around a secret and says so.
    held = "(a client secret is held in this session; type another to replace it)"
    return _HeldSecret(field, lambda _: held, strip=False)


def _held_token(field: W.Password) -> _HeldSecret:
    return _HeldSecret(field, lambda tok: f"{mask(tok)} held; paste another to replace it", strip=True)


# --- tables ---------------------------------------------------------------------------------


class _Table:
    """(name, value) rows shown as an HTML table and as aligned text."""

    def __init__(self, title: str, rows: Iterable[tuple[str, Any]]) -> None:
        # Rows may be a server's JSON (field names included): control characters escaped.
        self.title, self.rows = title, [(printable(str(k)), printable(str(v))) for k, v in rows]

    def __repr__(self) -> str:
        width = max((len(k) for k, _ in self.rows), default=0)
        return "\n".join([self.title, *(f"  {k:<{width}}  {v}" for k, v in self.rows)])

    def _repr_html_(self) -> str:
        body = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th><td style='text-align:left'><code>"
            f"{html.escape(v)}</code></td></tr>"
            for k, v in self.rows
        )
        return f"<b>{html.escape(self.title)}</b><table>{body}</table>"

"""The log view: the RequestLog as a table, a summary per environment and a latency plot."""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

import ipywidgets as W

from .base import _DESC, _WIDE, Notice, _Form

_LOG_COLUMNS = ("time", "environment", "attempt", "outcome", "http_status", "response_code", "latency_ms",
                "error_type")


def _figure_png(fig: Any) -> Any:
    """A matplotlib Figure as a PNG display object (works without a pyplot backend)."""
    import io

    from IPython.display import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    return Image(data=buf.getvalue(), format="png")


class LogView(_Form):
    """The request log as a table, a summary and a latency plot, with Refresh and Export CSV.

    ``log`` is a :class:`~snapbook.log.RequestLog` (anything with ``to_dataframe()``,
    ``summary()`` and ``plot()``). Rows hold masked signatures and tokens only.
    """

    def __init__(self, log: Any, *, csv_path: str | os.PathLike[str] = "request-log.csv", last: int = 10,
                 plot: bool = True) -> None:
        self.request_log = log
        self._last = last
        self._plot = plot
        self.refresh_button = W.Button(description="Refresh", icon="refresh")
        self.csv_path = W.Text(value=str(csv_path), description="CSV file", style=_DESC, layout=_WIDE)
        self.export_button = W.Button(description="Export CSV", icon="download")
        self.refresh_button.on_click(lambda _: self.refresh())
        self.export_button.on_click(lambda _: self._guard(self._export))
        super().__init__([W.HBox([self.refresh_button]), W.HBox([self.csv_path, self.export_button])])
        self.refresh()

    def __repr__(self) -> str:
        return f"LogView({len(self.request_log)} rows)"

    def refresh(self) -> None:
        """Redraw the table, the summary and the plot from the log as it is now."""
        self._guard(self._refresh)

    def _refresh(self) -> None:
        df = self.request_log.to_dataframe()
        if df.empty:
            self._show(Notice("info", "No requests logged yet.", hint="Request a token, then click Refresh."))
            return
        summary = self.request_log.summary()
        last = df[[c for c in _LOG_COLUMNS if c in df.columns]].tail(self._last).copy()
        if "time" in last:
            last["time"] = last["time"].dt.strftime("%Y-%m-%d %H:%M:%S")
        shown: list[Any] = [
            Notice("info", f"{len(df)} attempts, {int((df['outcome'] == 'success').sum())} successful."),
            _Caption("Summary per environment (latency in ms)"),
            summary.round({c: (3 if c == "success_rate" else 1) for c in summary.columns if summary[c].dtype.kind == "f"}),
            _Caption(f"Last {min(self._last, len(df))} attempts"),
            last.round(1).astype(object).where(last.notna(), ""),
        ]
        if self._plot:
            shown.append(_figure_png(self.request_log.plot()))
        self._show(*shown)

    def _export(self) -> None:
        path = Path(self.csv_path.value).expanduser()
        df = self.request_log.to_dataframe()
        path.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(path, index=False)
        self.refresh()
        self.output.append_display_data(
            Notice("ok", f"Exported {len(df)} rows to {path}.", ("Signatures and tokens are masked in the file.",))
        )


class _Caption:
    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        return f"<b>{html.escape(self.text)}</b>"

"""The dream report: ``dreams.json`` (also the DVC metric) and one self-contained HTML page.

Why hand-written HTML: one static page of tables and figures; the PNGs are embedded as base64
``data:`` URIs so the file opens in any browser with no server and no neighbouring files. A
template engine would be a new dependency for a few dozen lines. No timestamps or run ids in
either file: the same model and settings give the same bytes.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from robert.atomic import atomic_write_bytes

DIGITS = 4

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1500px; color: #222; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; font-size: 0.85em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.55em; text-align: right; }
th { background: #eee; } td:first-child, th:first-child { text-align: left; }
td.miss { background: #fde2e2; } td.hit { background: #e2f5e2; }
img { max-width: 100%; border: 1px solid #ddd; }
section { margin-top: 2em; } .note { color: #555; font-size: 0.9em; max-width: 70em; }
"""


def rounded(value: Any) -> Any:
    """Floats rounded to ``DIGITS`` decimals (NaN -> None), recursively: stable, readable JSON."""
    if isinstance(value, float):
        return None if value != value else round(value, DIGITS)
    if isinstance(value, Mapping):
        return {key: rounded(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(item) for item in value]
    return value


def write_json(path: Path, payload: Mapping[str, Any]) -> Path:
    atomic_write_bytes(path, (json.dumps(rounded(payload), indent=2) + "\n").encode())
    return path


def embedded_png(path: Path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _cell(value: Any, css: str = "") -> str:
    number = isinstance(value, float)
    text = ("n/a" if value != value else f"{value:.3f}") if number else html.escape(str(value))
    return f'<td class="{css}">{text}</td>' if css else f"<td>{text}</td>"


Table = tuple[Sequence[str] | None, Sequence[Sequence[Any]]]  # (headers or None, rows)


def html_table(headers: Sequence[str] | None, rows: Sequence[Sequence[Any]]) -> str:
    """A table; a cell given as (value, css class) gets that class. No headers: the first column is a header."""
    head = "" if headers is None else \
        "<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in headers) + "</tr></thead>"
    body = "".join(
        "<tr>" + "".join(f"<th>{html.escape(str(c))}</th>" if headers is None and i == 0
                         else _cell(*c) if isinstance(c, tuple) else _cell(c) for i, c in enumerate(row)) + "</tr>"
        for row in rows)
    return f"<table>{head}<tbody>{body}</tbody></table>"


def write_html(path: Path, title: str, model_rows: Sequence[Sequence[Any]], notes: Sequence[str],
               summaries: Sequence[tuple[str, Table]], figures: Sequence[tuple[str, Path, str]],
               molecules: Mapping[str, tuple[Path, Table]]) -> Path:
    """The page: model, notes, summary tables, the overall figures, then one section per molecule.

    ``summaries``: (heading, table); ``figures``: (heading, PNG, alt text); ``molecules``: molecule ->
    (its PNG, its table).
    """
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>",
             html_table(None, model_rows),
             "".join(f"<p class='note'>{html.escape(note)}</p>" for note in notes)]
    for heading, table in summaries:
        parts += [f"<h2>{html.escape(heading)}</h2>", html_table(*table)]
    for heading, png, alt in figures:
        parts += [f"<h2>{html.escape(heading)}</h2>", embedded_png(png, alt)]
    for molecule, (png, table) in molecules.items():
        anchor = html.escape(molecule)
        parts += [f"<section id='dream-{anchor}'><h2>{anchor}</h2>", embedded_png(png, f"dream of {molecule}"),
                  html_table(*table), "</section>"]
    parts.append("</body></html>\n")
    atomic_write_bytes(path, "\n".join(parts).encode())
    return path

"""A self-contained HTML page: inline CSS, figures as base64 PNG data URIs, no script, no
external resource. A Content-Security-Policy forbids scripts and any load other than inline
images and styles, so the page opens offline and a string that escaped escaping still could not
run. Every text goes through html.escape."""

from __future__ import annotations

import base64
from html import escape

from .document import Bullets, Facts, Figure, Heading, Report, Section, Table, Text

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

CSS = """
:root { --fg: #1d2127; --muted: #5b6470; --line: #d9dee4; --bg: #ffffff; --soft: #f5f7f9;
        --go: #1a7f37; --nogo: #b42318; --accent: #2457a6; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--fg); background: var(--bg); }
header { padding: 28px 40px 16px; border-bottom: 1px solid var(--line); }
header h1 { margin: 0 0 4px; font-size: 26px; }
header p { margin: 0; color: var(--muted); }
nav { padding: 10px 40px; background: var(--soft); border-bottom: 1px solid var(--line);
      font-size: 14px; }
nav a { color: var(--accent); text-decoration: none; margin-right: 16px; white-space: nowrap; }
main { padding: 8px 40px 40px; max-width: 1280px; }
section { margin-top: 28px; }
h2 { font-size: 21px; border-bottom: 2px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 16px; margin: 22px 0 6px; }
p.note, p.pending { background: var(--soft); border-left: 4px solid var(--muted);
                    padding: 8px 12px; color: var(--muted); }
p.pending { border-left-color: #b58105; }
p.go, p.nogo { font-size: 19px; font-weight: 600; padding: 12px 16px; border-radius: 6px;
               color: #fff; }
p.go { background: var(--go); }
p.nogo { background: var(--nogo); }
p.lead { font-size: 17px; font-weight: 600; }
.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr));
         gap: 10px; margin: 12px 0; }
.fact { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px;
        background: var(--soft); }
.fact .label { font-size: 12px; color: var(--muted); text-transform: uppercase;
               letter-spacing: .03em; }
.fact .value { font-size: 15px; font-weight: 600; overflow-wrap: anywhere; }
.table-wrap { overflow-x: auto; margin: 10px 0 18px; }
table { border-collapse: collapse; font-size: 13px; }
caption { caption-side: top; text-align: left; font-style: italic; color: var(--muted);
          padding-bottom: 4px; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left;
         vertical-align: top; }
th { background: var(--soft); }
tbody tr:nth-child(even) { background: #fafbfc; }
figure { margin: 14px 0 22px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { font-size: 13px; color: var(--muted); }
figcaption b { color: var(--fg); }
code { background: var(--soft); padding: 1px 4px; border-radius: 3px; }
"""


def _inline(text: str) -> str:
    """Escaped text with `code` spans (backticks are the only markup a block may carry)."""
    parts = escape(str(text)).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts)) \
        if len(parts) % 2 else escape(str(text))


def _table(t: Table) -> str:
    head = "".join(f"<th>{escape(str(c))}</th>" for c in t.df.columns)
    rows = "".join("<tr>" + "".join(f"<td>{escape(str(v))}</td>" for v in row) + "</tr>"
                   for row in t.df.itertuples(index=False))
    caption = f"<caption>{escape(t.caption)}</caption>" if t.caption else ""
    return (f'<div class="table-wrap"><table>{caption}<thead><tr>{head}</tr></thead>'
            f"<tbody>{rows}</tbody></table></div>")


def _figure(f: Figure, png: bytes) -> str:
    data = base64.b64encode(png).decode("ascii")
    method = f" {escape(f.method)}" if f.method else ""
    return (f'<figure id="fig-{escape(f.name)}"><img src="data:image/png;base64,{data}" '
            f'alt="{escape(f.caption)}"><figcaption><b>{escape(f.caption)}.</b>{method}'
            f"</figcaption></figure>")


def block(b, figures) -> str:
    if isinstance(b, Text):
        return f'<p class="{escape(b.style)}">{_inline(b.text)}</p>'
    if isinstance(b, Heading):
        return f"<h3>{escape(b.text)}</h3>"
    if isinstance(b, Bullets):
        return "<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in b.items) + "</ul>"
    if isinstance(b, Facts):
        cards = "".join(f'<div class="fact"><div class="label">{escape(k)}</div>'
                        f'<div class="value">{escape(v)}</div></div>' for k, v in b.items)
        return f'<div class="facts">{cards}</div>'
    if isinstance(b, Table):
        return _table(b)
    if isinstance(b, Figure):
        return _figure(b, figures[b.name])
    raise TypeError(f"unknown block {type(b).__name__}")


def section(s: Section, figures) -> str:
    body = "\n".join(block(b, figures) for b in s.blocks)
    return f'<section id="{escape(s.id)}">\n<h2>{escape(s.title)}</h2>\n{body}\n</section>'


def render(report: Report) -> str:
    """report.html: one page, readable offline, printable."""
    nav = "\n".join(f'<a href="#{escape(s.id)}">{escape(s.title)}</a>' for s in report.sections)
    body = "\n".join(section(s, report.figures) for s in report.sections)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{escape(report.title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            f"<header><h1>{escape(report.title)}</h1><p>{escape(report.subtitle)}</p></header>\n"
            f"<nav>{nav}</nav>\n<main>\n{body}\n</main>\n</body>\n</html>\n")

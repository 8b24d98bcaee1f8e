"""Static parts of the HTML report: the page skeleton and its inline stylesheet.

The page must stand alone: no external stylesheet, font, script or image. Everything the
browser needs is in this CSS string and in the data URIs that `html_page.py` writes.
"""

from __future__ import annotations

import html

CSS = """
:root {
  --fg: #1f2328; --muted: #59636e; --bg: #ffffff; --panel: #f6f8fa;
  --border: #d1d9e0; --best-bg: #dafbe1; --best-fg: #116329; --bad: #cf222e; --good: #1a7f37;
  --bad-bg: #ffebe9; --idle-bg: #eaeef2;
}
@media (prefers-color-scheme: dark) {
  :root {
    --fg: #e6edf3; --muted: #9198a1; --bg: #0d1117; --panel: #151b23;
    --border: #3d444d; --best-bg: #12361f; --best-fg: #7ee787; --bad: #ff7b72; --good: #3fb950;
    --bad-bg: #3c1618; --idle-bg: #262c36;
  }
}
* { box-sizing: border-box; }
body {
  margin: 0 auto; padding: 1.5rem 2rem 4rem; max-width: 1320px;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: var(--fg); background: var(--bg);
}
h1 { font-size: 1.8rem; margin: 0 0 .25rem; }
h2 { font-size: 1.4rem; margin-top: 2.5rem; padding-bottom: .3rem; border-bottom: 1px solid var(--border); }
h3 { font-size: 1.1rem; margin-top: 1.5rem; }
h4 { font-size: 1rem; margin: 1.1rem 0 .2rem; }
.left-out { font-size: .9em; }
.subtitle, .note, .muted { color: var(--muted); }
.note { font-size: .85em; font-style: italic; }
nav ul { margin: .25rem 0; padding: 0; list-style: none; display: flex; flex-wrap: wrap; gap: .3rem 1.2rem; }
.legend {
  background: var(--panel); border: 1px solid var(--border); border-radius: 6px;
  padding: .6rem 1rem; margin: 1rem 0;
}
.legend p { margin: .2rem 0; }
.table-wrap { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid var(--border); padding: .3rem .6rem; vertical-align: top; }
th { background: var(--panel); text-align: center; white-space: nowrap; }
td.num { text-align: right; white-space: nowrap; }
td.missing { text-align: center; color: var(--muted); }
td.best { background: var(--best-bg); color: var(--best-fg); }
th.rowhead { text-align: left; }
table.metrics th.rowhead { position: sticky; left: 0; z-index: 1; }
table.metrics thead th { font-size: .85em; white-space: normal; }
.suites { display: flex; flex-wrap: wrap; gap: 0 2rem; align-items: flex-start; }
.suite { max-width: 100%; min-width: 0; }
.ok { color: var(--good); font-weight: 600; }
.fail { color: var(--bad); font-weight: 600; }
.badge {
  display: inline-block; padding: .05rem .55rem; border-radius: 1rem; font-weight: 600;
  font-size: .85em; white-space: nowrap; border: 1px solid transparent;
}
.badge.held { background: var(--best-bg); color: var(--best-fg); border-color: var(--good); }
.badge.not-held { background: var(--bad-bg); color: var(--bad); border-color: var(--bad); }
.badge.not-run { background: var(--idle-bg); color: var(--muted); border-color: var(--border); }
.badge.inconclusive { background: var(--idle-bg); color: var(--fg); border-color: var(--muted); border-style: dashed; }
.unsure { color: var(--muted); font-weight: 600; }
table.claims img.seeds { display: block; max-width: 100%; margin-top: .3rem; }
table.claims { width: 100%; }
table.claims td.statement { min-width: 18rem; }
table.claims ul { margin: 0; padding: 0; list-style: none; }
table.claims li { white-space: normal; }
table.claims li .reasons { display: block; margin: 0 0 .2rem 1.2rem; }
table.claims .paper-result { display: block; color: var(--muted); font-size: .85em; margin-top: .2rem; }
.reasons { color: var(--muted); font-size: .85em; margin: .2rem 0 0; white-space: normal; }
figure { margin: .5rem 0 1rem; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--border); background: #fff; }
figcaption { color: var(--muted); font-size: .9em; margin-top: .2rem; }
.compare {
  display: grid; grid-template-columns: repeat(auto-fill, minmax(290px, 1fr));
  gap: .8rem 1rem; align-items: start;
}
.compare figure { margin: 0; }
@media (min-width: 800px) { .compare figure:only-child { grid-column: span 2; } }
.compare figcaption { color: var(--fg); font-weight: 600; text-align: center; }
details { border: 1px solid var(--border); border-radius: 6px; padding: .4rem .8rem; margin: .5rem 0; }
details > summary { cursor: pointer; font-weight: 600; }
details[open] > summary { margin-bottom: .5rem; }
pre {
  background: var(--panel); border: 1px solid var(--border); border-radius: 6px;
  padding: .8rem; overflow-x: auto; font-size: .85em;
}
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
"""


def page(title: str, body: str) -> str:
    """A complete HTML5 document around an already-escaped `body`."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n'
        "<head>\n"
        '<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n"
        f"<style>{CSS}</style>\n"
        "</head>\n"
        "<body>\n"
        f"{body}\n"
        "</body>\n"
        "</html>\n"
    )

"""A self-contained HTML page from one of our Markdown reports (images embedded as data URIs).

Covers the Markdown our reports use: ``#`` headings, paragraphs, ``-`` lists, ``|`` pipe tables,
fenced code blocks, ``**bold**``, inline ``code`` and ``![alt](relative.png)`` images. Not a general
Markdown renderer.
"""

import base64
import html
import re
from pathlib import Path

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem;
       line-height: 1.5; color: #1d1d1f; }
pre { background: #f5f5f7; padding: 0.8rem; overflow-x: auto; font-size: 0.85rem; }
code { background: #f5f5f7; padding: 0 0.2rem; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.5rem 0; }
h1, h2, h3 { line-height: 1.2; }
.table { overflow-x: auto; margin: 0.5rem 0 1rem; }
table { border-collapse: collapse; font-size: 0.9rem; }
th, td { border: 1px solid #ddd; padding: 0.2rem 0.5rem; }
th { background: #f5f5f7; text-align: left; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
"""

_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)]+)\)")
_CELL_BORDER = re.compile(r"(?<!\\)\|")  # a pipe that is not escaped as \|
_NUMBER = re.compile(r"-?\d")  # a cell that starts with a number is right-aligned


def _format(text):
    """Escaped text with **bold** and `code` rendered."""
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html.escape(text))
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)


def _inline(text, folder):
    """A line of text with its images embedded as data URIs."""
    pieces, last = [], 0
    for match in _IMAGE.finditer(text):
        data = base64.b64encode((folder / match.group(2)).read_bytes()).decode()
        pieces += [
            _format(text[last : match.start()]),
            f'<img alt="{html.escape(match.group(1))}" src="data:image/png;base64,{data}">',
        ]
        last = match.end()
    return "".join(pieces) + _format(text[last:])


def _cell(text, folder):
    number = ' class="number"' if _NUMBER.match(text) else ""
    return f"<td{number}>{_inline(text, folder)}</td>"


def _table(lines, folder):
    """A pipe table (header, separator, rows) as an HTML table."""
    cells = [
        [cell.strip().replace("\\|", "|") for cell in _CELL_BORDER.split(line.strip().strip("|"))] for line in lines
    ]
    rows = [row for row in cells if not all(re.fullmatch(r":?-+:?", cell) for cell in row)]
    header, *body = rows
    head = "".join(f"<th>{_inline(cell, folder)}</th>" for cell in header)
    rest = "".join("<tr>" + "".join(_cell(cell, folder) for cell in row) + "</tr>" for row in body)
    return f'<div class="table"><table><thead><tr>{head}</tr></thead><tbody>{rest}</tbody></table></div>'


def markdown_to_html(markdown, folder, title):
    """HTML of a report whose relative image links resolve against ``folder``."""
    body, paragraph, table, in_list, in_code = [], [], [], False, False

    def close_blocks():
        nonlocal in_list
        if paragraph:
            body.append(f"<p>{' '.join(paragraph)}</p>")
            paragraph.clear()
        if in_list:
            body.append("</ul>")
            in_list = False
        if table:
            body.append(_table(table, folder))
            table.clear()

    for line in markdown.splitlines():
        if line.startswith("```"):
            close_blocks()
            body.append("</pre>" if in_code else "<pre>")
            in_code = not in_code
        elif in_code:
            body.append(html.escape(line))
        elif match := re.match(r"(#{1,6}) (.*)", line):
            close_blocks()
            level = len(match.group(1))
            body.append(f"<h{level}>{_inline(match.group(2), folder)}</h{level}>")
        elif line.startswith("- "):
            if paragraph:
                close_blocks()
            if not in_list:
                body.append("<ul>")
                in_list = True
            body.append(f"<li>{_inline(line[2:], folder)}")
        elif line.startswith("|"):
            table.append(line)
        elif not line.strip():
            close_blocks()
        elif in_list and line.startswith("  "):
            body.append(_inline(line.strip(), folder))
        else:
            paragraph.append(_inline(line, folder))
    close_blocks()
    page = "\n".join(body).replace("<pre>\n", "<pre>")
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head><body>\n{page}\n</body></html>\n"
    )


def write_html_report(markdown_path, html_path=None):
    """Write the self-contained HTML twin of a Markdown report; returns its path."""
    from s3prl_mi_probe.common.atomic import write_text_atomic

    markdown_path = Path(markdown_path)
    html_path = Path(html_path) if html_path else markdown_path.with_suffix(".html")
    title = markdown_path.read_text().splitlines()[0].lstrip("# ").strip()
    write_text_atomic(html_path, markdown_to_html(markdown_path.read_text(), markdown_path.parent, title))
    return html_path

"""One self-contained HTML page from markdown: tables, text and the plots, with every
local file it names (PNG, SVG) embedded as a data URI and nothing loaded from the network
(a remote image is shown as its alt text), so the page can be attached to a CI run and
opened anywhere, offline.
"""

from __future__ import annotations

import base64
import html
import mimetypes
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token

__all__ = ["html_page", "write_html"]

_STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       color: #1f2328; }
table { border-collapse: collapse; margin: 1em 0; font-size: 14px; }
th, td { border: 1px solid #d0d7de; padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
code, pre { font: 13px ui-monospace, monospace; background: #f6f8fa; }
pre { padding: 0.8em; overflow-x: auto; }
img { max-width: 100%; }
blockquote { margin: 0; padding: 0 1em; border-left: 4px solid #d0d7de; color: #59636e; }
"""


def _data_uri(path: Path) -> str:
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{kind};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _local(ref: str, base: Path) -> Path | None:
    if not ref or ":" in ref.split("/", 1)[0] or ref.startswith(("#", "//")):
        return None  # a URL with a scheme, a fragment or a network path
    path = (base / ref).resolve()
    return path if path.is_file() else None


def _markdown(base: Path) -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])

    def image(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
        token = tokens[idx]
        path = _local(str(token.attrGet("src") or ""), base)
        if path is None:  # never load anything from the network: say what it was
            return f"<em>[{html.escape(token.content)}]</em>"
        token.attrSet("src", _data_uri(path))
        return str(self.image(tokens, idx, options, env))

    def link_open(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
        token = tokens[idx]
        path = _local(str(token.attrGet("href") or ""), base)
        if path is not None:  # a link to a file beside the report (an SVG) travels with the page
            token.attrSet("href", _data_uri(path))
        return str(self.renderToken(tokens, idx, options, env))

    md.add_render_rule("image", image)
    md.add_render_rule("link_open", link_open)
    return md


def html_page(title: str, markdown: str, base: Path) -> str:
    """`markdown` as a page; files it names are read relative to `base`."""
    body = _markdown(base).render(markdown)
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n{body}</body>\n"
            "</html>\n")


def write_html(path: Path, title: str, markdown: str, base: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html_page(title, markdown, base), encoding="utf-8")
    return path

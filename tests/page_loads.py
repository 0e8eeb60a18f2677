"""What an HTML page would load when opened: every src, <link href>, CSS url() and @import.
A self-contained page (trade-ops' --html) loads nothing but data: URIs."""

from __future__ import annotations

from html.parser import HTMLParser

__all__ = ["external_loads"]


class _Loads(HTMLParser):
    """Every place an HTML page would load something from: src attributes, <link>, CSS url()."""

    def __init__(self) -> None:
        super().__init__()
        self.loads: list[str] = []
        self.images = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "srcset", "poster", "data") or (tag == "link" and name == "href"):
                self.loads.append(value or "")
        self.images += tag == "img"

    def handle_data(self, data: str) -> None:
        if "url(" in data or "@import" in data:
            self.loads.append(data)


def external_loads(html: str) -> tuple[list[str], int]:
    parser = _Loads()
    parser.feed(html)
    return [x for x in parser.loads if not x.startswith("data:")], parser.images

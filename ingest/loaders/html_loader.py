"""HTML to plain text with BeautifulSoup: visible text only, headings kept as Markdown ``#`` lines."""

from __future__ import annotations

import re

from bs4 import BeautifulSoup

from ingest.chunking.normalize import normalize_text
from ingest.loaders.load_error import LoadError

_META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:-]+)", re.IGNORECASE)
# The charset declaration must be near the top (the HTML standard says within the first 1024 bytes).
CHARSET_SNIFF_BYTES = 2048
_DROPPED = ("script", "style", "noscript", "template", "head", "svg", "iframe")
_BLOCKS = ("p", "div", "li", "tr", "br", "section", "article", "table", "ul", "ol", "pre", "blockquote",
           "header", "footer", "nav", "main", "aside", "dd", "dt", "figcaption", "hr")
# Browsers' HTML parsers stop nesting at 512 levels; deeper input is malformed or hostile, and each bs4 append
# walks up every ancestor, so a 1 MB page of 200,000 nested <div> would take half an hour to read.
MAX_HTML_DEPTH = 512


def declared_charset(data: bytes) -> str | None:
    """The encoding named by a ``<meta charset>`` or ``http-equiv`` tag at the top of the file, if any."""
    match = _META_CHARSET.search(data[:CHARSET_SNIFF_BYTES])
    return match.group(1).decode("ascii").lower() if match else None


def _max_depth(soup: BeautifulSoup) -> int:
    """How deep the tags nest (one pass: find_all yields each parent before its children)."""
    depth = {id(soup): 0}
    for tag in soup.find_all(True):
        depth[id(tag)] = depth[id(tag.parent)] + 1
    return max(depth.values())


def read_html(text: str, path: str) -> tuple[str, str]:
    """Return ``(normalised visible text, <title> or first <h1>)`` of an HTML document already decoded."""
    try:
        soup = BeautifulSoup(text, "lxml")
        if (depth := _max_depth(soup)) > MAX_HTML_DEPTH:
            raise LoadError(path, f"HTML tags nested {depth} levels deep, over the limit of {MAX_HTML_DEPTH}")
        title_tag = soup.find("title")
        title = title_tag.get_text(" ", strip=True) if title_tag else ""
        for tag in soup.find_all(_DROPPED):
            tag.decompose()
        for level in range(1, 7):
            for heading in soup.find_all(f"h{level}"):
                heading.string = "\n\n" + "#" * level + " " + heading.get_text(" ", strip=True) + "\n\n"
        for cell in soup.find_all(("td", "th")):
            cell.append(" ")
        for block in soup.find_all(_BLOCKS):
            block.insert_before("\n")
            block.append("\n")
        body = soup.get_text("")
    except LoadError:
        raise
    except Exception as exc:  # lxml/bs4 failures on pathological input
        raise LoadError(path, f"cannot parse HTML ({type(exc).__name__}: {exc})") from exc
    lines = (" ".join(line.split()) for line in body.split("\n"))
    clean = normalize_text("\n".join(lines))
    if not title:
        title = next((ln.lstrip("# ") for ln in clean.split("\n") if ln.startswith("# ")), "")
    return clean, title

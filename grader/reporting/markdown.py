"""Students' written answers as HTML: Markdown (markdown-it-py, CommonMark plus tables) with raw
HTML disabled, so a student's `<script>` or `<img onerror>` stays text, and `$…$` / `$$…$$` math
converted to MathML by latex2mathml (browsers render MathML natively: nothing to load, works
offline). Math the converter cannot handle, or whose output is anything but plain MathML, is
kept as its source in a code span.
"""
from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from functools import lru_cache

from markupsafe import Markup

MATHML = "{http://www.w3.org/1998/Math/MathML}"
# Presentation MathML only; an attribute outside this list (href, on*, style, ...) rejects the formula
ALLOWED_ATTRIBUTES = {"display", "mathvariant", "stretchy", "fence", "separator", "width", "height", "depth",
                      "lspace", "rspace", "accent", "accentunder", "movablelimits", "largeop", "symmetric",
                      "minsize", "maxsize", "columnalign", "rowalign", "columnlines", "rowlines", "columnspacing",
                      "rowspacing", "frame", "framespacing", "equalrows", "equalcolumns", "displaystyle",
                      "scriptlevel", "linethickness", "notation", "form", "align", "open", "close", "xmlns"}
ALLOWED_TAGS = {"math", "mrow", "mi", "mn", "mo", "ms", "mtext", "mspace", "msub", "msup", "msubsup", "mfrac",
                "msqrt", "mroot", "mover", "munder", "munderover", "mtable", "mtr", "mtd", "mstyle", "mpadded",
                "mphantom", "menclose", "mfenced", "semantics", "annotation", "merror", "mmultiscripts",
                "mprescripts", "none", "mlabeledtr"}


def _math(latex: str, display: bool) -> str:
    try:
        from latex2mathml.converter import convert

        mathml = convert(latex, display="block" if display else "inline")
        root = ET.fromstring(mathml)
    except Exception:  # noqa: BLE001 - the converter raises many types on unsupported LaTeX
        return _source(latex, display)
    for element in root.iter():
        tag = element.tag.replace(MATHML, "")
        if tag not in ALLOWED_TAGS or any(a.split("}")[-1] not in ALLOWED_ATTRIBUTES for a in element.attrib):
            return _source(latex, display)
    return mathml


def _source(latex: str, display: bool) -> str:
    delimiter = "$$" if display else "$"
    return f'<code class="math-source">{html.escape(delimiter + latex + delimiter)}</code>'


@lru_cache(maxsize=1)
def _parser():
    from markdown_it import MarkdownIt
    from mdit_py_plugins.dollarmath import dollarmath_plugin

    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable("table")
    md.use(dollarmath_plugin, allow_labels=False, allow_space=True, allow_digits=False, double_inline=True,
           renderer=lambda content, options: _math(content, options.get("display_mode", False)))
    return md


HTML_COMMENT = re.compile(r"<!--.*?(-->|$)", re.DOTALL)


def render_markdown(text: str) -> Markup:
    """Safe HTML for a student's Markdown answer (the result is marked safe for Jinja). HTML
    comments are dropped, as Jupyter hides them; every other tag stays visible as text."""
    if not text:
        return Markup("")
    return Markup(_parser().render(HTML_COMMENT.sub("", text)))

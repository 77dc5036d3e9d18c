"""Written answers as HTML (grader/reporting/markdown.py): Markdown rendered, math as MathML, and
nothing a student writes becomes markup. (tests/test_summary_browser.py checks the same in a
real browser.)"""
from __future__ import annotations

from grader.reporting.markdown import render_markdown


def test_markdown_and_math_are_rendered():
    html = render_markdown("The L1 rule:\n\n* **step**: $\\theta \\leftarrow \\theta - \\eta\\,\\mathrm{sign}(\\theta)$\n\n"
                           "$$\\frac{\\partial L}{\\partial W_1}$$")
    assert "<li><strong>step</strong>: " in html
    assert '<math xmlns="http://www.w3.org/1998/Math/MathML" display="inline">' in html
    assert '<math xmlns="http://www.w3.org/1998/Math/MathML" display="block">' in html and "<mfrac>" in html


def test_raw_html_links_and_math_tricks_stay_text():
    html = render_markdown("<script>alert(1)</script>\n\n<img src=x onerror=alert(2)>\n\n[x](javascript:alert(3))\n\n"
                           "$\\href{javascript:alert(4)}{x}$ and $\\text{<b>bold</b>}$")
    assert "<script" not in html and "<img" not in html and 'href="javascript' not in html and "<b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;img src=x onerror=alert(2)&gt;" in html
    # math the converter refuses (or turns into anything but plain MathML) is kept as its source
    assert '<code class="math-source">$\\href{javascript:alert(4)}{x}$</code>' in html


def test_unconvertible_math_is_kept_as_source_and_comments_are_dropped():
    html = render_markdown("<!-- BEGIN MODEL ANSWER -->Answer: $\\undefinedmacro{x$ done<!-- unterminated")
    assert "BEGIN MODEL ANSWER" not in html and "unterminated" not in html
    assert "Answer:" in html and "done" in html


def test_empty_answer_is_empty():
    assert render_markdown("") == ""

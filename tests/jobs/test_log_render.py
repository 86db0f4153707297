"""Job logs as HTML: ANSI colours become classes, Buildkite's section markers become sections,
and nothing in a log can inject markup."""

from __future__ import annotations

from bastion.jobs.log_render import render_log

ESC = "\x1b"


def test_colours_become_classes_and_reset_ends_them() -> None:
    [section] = render_log(f"{ESC}[1;31mFAILED{ESC}[0m 3 tests\n{ESC}[32mok{ESC}[39m done\n")
    assert section.html == (
        '<span class="ansi-bold ansi-fg-31">FAILED</span> 3 tests\n'
        '<span class="ansi-fg-32">ok</span> done'
    )


def test_other_escapes_are_dropped_and_a_carriage_return_keeps_the_last_write() -> None:
    log = f"{ESC}]0;title{ESC}\\{ESC}[2K 10%\r 50%\r100%\n{ESC}[38;5;208morange{ESC}[0m\n"
    assert render_log(log)[0].html == "100%\norange"  # 256 colours fall back to the default


def test_sections_collapse_expand_and_expand_the_previous_one() -> None:
    log = (
        "preparing\n--- :pip: install\ncollected\n+++ tests\n"
        f"{ESC}[31m1 failed{ESC}[0m\n~~~ cleanup\nremoved\n--- upload\n^^^ +++\nsent\n"
    )
    sections = render_log(log)
    assert [(str(s.title), s.expanded) for s in sections] == [
        ("", True),
        (":pip: install", False),
        ("tests", True),
        ("cleanup", False),
        ("upload", True),  # opened by ^^^ +++
    ]
    assert sections[0].html == "preparing" and sections[4].html == "sent"
    assert "ansi-fg-31" in sections[2].html


def test_markup_in_a_log_is_escaped_everywhere() -> None:
    sections = render_log('--- <img src=x onerror="alert(1)">\n<script>alert(2)</script>\n')
    assert [str(s.title) for s in sections] == ["&lt;img src=x onerror=&quot;alert(1)&quot;&gt;"]
    assert sections[0].html == "&lt;script&gt;alert(2)&lt;/script&gt;"

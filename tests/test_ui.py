"""The browser chat: its handler called directly, then the real app driven in headless Chromium.

Expected speakers and files come from `pipeline.ask` on the same index, so the tests check that
the UI shows what the pipeline answered, not a hard-coded guess about retrieval.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from rag.answering import load_phrases
from tests.conftest import free_port
from ui.app import EMPTY_QUESTION, THINKING, build_app, launch, respond

ASKELL = "What did Askell say about sycophancy?"
DARIO = "What does Dario Amodei think about the race to the top?"
OLAH_ZH = "克里斯·欧拉如何看待神经网络之美？"
OFF_TOPIC = "What is the capital of Peru?"
ABSTAIN_EN = load_phrases()["en"]["abstain"] + " They never mention Peru."

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def contents(pipeline, question, speaker="Any", history=None) -> tuple[list[str], list[dict]]:
    """Every streamed state of the last message, and the final history."""
    states, history_out = [], None
    for history_out, box in respond(pipeline, question, speaker, history):
        assert box == ""  # the textbox is cleared on every step
        states.append(history_out[-1]["content"])
    return states, history_out


# ---------------------------------------------------------------------------- handler smoke tests


def test_answer_streams_then_shows_cited_passages(pipeline):
    answer = pipeline.ask(ASKELL)
    assert answer.citations, "precondition: the pipeline answers this question"

    states, history = contents(pipeline, ASKELL)
    assert states[0] == THINKING and len(states) > 2  # placeholder, streamed text, finished answer
    assert [m["role"] for m in history] == ["user", "assistant"]
    assert history[0]["content"] == ASKELL
    final = states[-1]
    assert "[1]" in final and "Amanda Askell" in final
    for c in answer.citations:
        chunk = c.passage.chunk
        assert f"**[{c.n}] {chunk.speaker}**" in final
        assert f"`{chunk.source}` · {chunk.char_start}–{chunk.char_end}" in final
        assert c.passage.shown_text.splitlines()[0][:20] in final  # the passage itself is quoted


def test_editorial_citation_names_its_subject(pipeline):
    answer = pipeline.ask(OLAH_ZH)
    editorial = [c for c in answer.citations if c.passage.chunk.speaker in ("Editorial", "Narrator")]
    if not editorial:
        pytest.skip("no editorial/narrator citation for this question on this index")
    final = contents(pipeline, OLAH_ZH)[0][-1]
    chunk = editorial[0].passage.chunk
    assert f"**[{editorial[0].n}] {chunk.speaker} on {chunk.subject}**" in final


def test_abstention_has_no_citations(pipeline):
    assert pipeline.ask(OFF_TOPIC).abstained, "precondition: the pipeline abstains on this question"
    final = contents(pipeline, OFF_TOPIC)[0][-1]
    assert final == ABSTAIN_EN
    assert "[1]" not in final and "Sources" not in final


def test_speaker_filter_applies(pipeline):
    final = contents(pipeline, "sycophancy", speaker="Lex Fridman")[0][-1]
    assert "**[1] Lex Fridman**" in final
    assert "Amanda Askell**" not in final


@pytest.mark.parametrize("bad", ["", "   \n", None])
def test_empty_question_is_a_message_and_the_next_question_works(pipeline, bad):
    states, history = contents(pipeline, bad)
    assert states == [EMPTY_QUESTION]
    assert history == [{"role": "assistant", "content": EMPTY_QUESTION}]

    states, history = contents(pipeline, ASKELL, history=history)
    assert len(history) == 3 and "[1]" in states[-1] and "Amanda Askell" in states[-1]


def test_unknown_speaker_is_a_message_and_the_next_question_works(pipeline):
    states, history = contents(pipeline, ASKELL, speaker="Nobody Atall")
    assert states[-1].startswith("⚠️ Unknown speaker")
    assert "Amanda Askell" in states[-1]  # the message lists the known speakers

    states, _ = contents(pipeline, ASKELL, speaker="Amanda Askell", history=history)
    assert "**[1] Amanda Askell**" in states[-1]


def test_unexpected_failure_is_a_message_not_a_crash():
    class Broken:
        def ask_stream(self, question, history=(), k=None, speaker=None):
            raise RuntimeError("index exploded")
            yield  # a generator, like the real one

    states, history = contents(Broken(), ASKELL)
    assert "Something went wrong" in states[-1] and "RuntimeError" in states[-1]
    assert history[0] == {"role": "user", "content": ASKELL}


def test_serve_refuses_a_busy_port_before_building_anything():
    from click.testing import CliRunner

    from ui.cli import serve

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(serve, ["--port", str(port)])
    assert result.exit_code == 1
    assert f"Port {port} on 127.0.0.1 is already in use" in result.output


# ---------------------------------------------------------------------------- real browser


@pytest.fixture(scope="module")
def server_url(pipeline):
    app = build_app(pipeline)
    port = free_port()
    launch(app, "127.0.0.1", port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        app.close(verbose=False)


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser, server_url):
    page = browser.new_page(viewport={"width": 1280, "height": 1200})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server_url)
    page.locator("#question textarea").wait_for(timeout=30_000)
    yield page
    page.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def ask_in_browser(page, question: str) -> None:
    box = page.locator("#question textarea")
    box.fill(question)
    box.press("Enter")


@pytest.mark.browser
def test_browser_question_shows_answer_and_cited_passages(page, pipeline):
    from playwright.sync_api import expect

    answer = pipeline.ask(ASKELL)
    first = answer.citations[0].passage.chunk
    ask_in_browser(page, ASKELL)

    bot = page.locator('#chat [data-testid="bot"]').last
    expect(bot).to_contain_text(f"{first.char_start}–{first.char_end}", timeout=60_000)
    expect(bot).to_contain_text("Here is what the interviews say")
    expect(bot).to_contain_text("[1]")
    expect(bot.get_by_text(f"[1] {first.speaker}", exact=True)).to_be_visible()
    expect(bot.get_by_text(first.source, exact=True).first).to_be_visible()
    expect(bot.locator("blockquote").first).to_be_visible()
    expect(page.locator("#question textarea")).to_have_value("")  # cleared for the next question


@pytest.mark.browser
def test_browser_empty_submission_then_next_question_works(page, pipeline):
    from playwright.sync_api import expect

    ask_in_browser(page, "")
    bot = page.locator('#chat [data-testid="bot"]')
    expect(bot.last).to_have_text(EMPTY_QUESTION, timeout=30_000)

    first = pipeline.ask(DARIO).citations[0].passage.chunk
    ask_in_browser(page, DARIO)
    expect(page.locator('#chat [data-testid="user"]').last).to_have_text(DARIO, timeout=30_000)
    expect(bot.last).to_contain_text(f"{first.char_start}–{first.char_end}", timeout=60_000)
    expect(bot.last.get_by_text(f"[1] {first.speaker}", exact=True)).to_be_visible()
    expect(bot.last.get_by_text(first.source, exact=True).first).to_be_visible()
    expect(page.get_by_text(re.compile(r"^Error$"))).to_have_count(0)  # no Gradio error toast


@pytest.mark.browser
def test_browser_example_button_asks_it(page):
    from playwright.sync_api import expect

    page.get_by_role("button", name=OFF_TOPIC).click()
    expect(page.locator('#chat [data-testid="user"]').last).to_have_text(OFF_TOPIC, timeout=30_000)
    expect(page.locator('#chat [data-testid="bot"]').last).to_have_text(ABSTAIN_EN, timeout=60_000)

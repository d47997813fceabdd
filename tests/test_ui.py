"""The browser chat: its handlers called directly, then `rag serve` driven in headless Chromium
and through gradio_client.

Expected speakers and passages come from `pipeline.ask` on the same index, so the tests check
that the UI shows what the pipeline answered, not a hard-coded guess about retrieval.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import socket
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from pydantic import SecretStr

from bench.bench_web import free_port, served
from rag.errors import UserError
from rag.feedback import feedback_path, read_feedback
from rag.models import Answer
from rag.settings import PROJECT_ROOT, Settings
from tests.bad_questions import ALL_CASES, BadQuestion, ids
from ui.app import NO_SOURCES, SEARCH, THINKING, WRITING, Indexing, public_settings, respond, retry, vote, web_auth
from ui.render import answer_markdown, escape_markdown, passage_card

ASKELL = "What did Askell say about sycophancy?"
DARIO_RLHF = "What did Dario Amodei say about RLHF?"
FOLLOW_UP = "and what did Askell say about it?"
OFF_TOPIC = "What is the capital of Peru?"

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def run(pipeline, question, history=None, turns=None, **options):
    """Every streamed (chat, box, panel, turns) state of one question, as Gradio sent it."""
    return [copy.deepcopy(state) for state in respond(pipeline, question, history, turns, **options)]


def card_speakers(panel: str) -> list[str]:
    return re.findall(r'<div class="who"><span class="n">[^<]*</span> <strong>([^<]*)</strong>', panel)


# ---------------------------------------------------------------------------- handlers


def test_sources_appear_before_the_answer_then_each_marker_links_to_its_passage(pipeline):
    answer = pipeline.ask(ASKELL)
    assert answer.citations, "precondition: the pipeline answers this question"
    states = run(pipeline, ASKELL)

    assert states[0][0][-1]["content"] == THINKING
    found = next(i for i, (_, _, panel, _) in enumerate(states) if "Passages found" in panel)
    assert states[found][0][-1]["content"] == WRITING  # passages shown, answer not written yet
    chat, box, panel, turns = states[-1]
    assert box == "" and [m["role"] for m in chat] == ["user", "assistant"]
    for c in answer.citations:
        assert f"(#src-1-{c.n})" in chat[-1]["content"]
        card = panel.split(f'id="src-1-{c.n}"', 1)[1].split('<div class="source', 1)[0]
        assert c.passage.chunk.attribution in card and c.passage.chunk.source in card
        assert "<mark>" in card  # the cited sentence is highlighted
    assert "How the answer was made" in panel and turns[0]["answer"]["answer"] == answer.text


def test_follow_up_is_searched_with_the_earlier_question(pipeline):
    *_, (chat, _, _, turns) = run(pipeline, DARIO_RLHF)
    *_, (chat, _, panel, turns) = run(pipeline, FOLLOW_UP, chat, turns)
    assert turns[1]["history"][0] == {"role": "user", "content": DARIO_RLHF}
    expected = pipeline.ask(FOLLOW_UP, turns[1]["history"])
    assert expected.query.question == "What did Amanda Askell say about RLHF?"
    assert "What did Amanda Askell say about RLHF?" in panel and "follow-up rewritten by rule" in panel
    assert chat[-1]["content"].startswith("_(searched as: What did Amanda Askell say about RLHF?)_")
    assert turns[1]["answer"]["citations"] == expected.to_json()["citations"]


def test_follow_up_is_answered_from_the_person_it_names(pipeline):
    """Dario's RLHF passages outrank Askell's, but the answer quotes hers first."""
    history = [{"role": "user", "content": DARIO_RLHF}, {"role": "assistant", "content": pipeline.ask(DARIO_RLHF).text}]
    speakers = [c.passage.chunk.speaker for c in pipeline.ask(FOLLOW_UP, history).citations]
    assert speakers[:2] == ["Amanda Askell", "Amanda Askell"]


def test_plain_search_lists_ranked_passages_with_filters(pipeline):
    expected = pipeline.search("sycophancy", 5, speaker="Lex Fridman")
    *_, (chat, _, panel, turns) = run(pipeline, "sycophancy", mode=SEARCH, speaker="Lex Fridman")
    assert chat[-1]["content"].startswith(f"**{len(expected.passages)} passages**")
    assert card_speakers(panel) == ["Lex Fridman"] * len(expected.passages)
    source = expected.passages[0].chunk.source
    *_, (_, _, panel, _) = run(pipeline, "sycophancy", mode=SEARCH, source=source)
    assert panel.count(f"<code>{source}</code>") == panel.count('class="source')


def test_bilingual_passage_shows_the_english_original_beside_the_chinese(pipeline):
    question = "What did Askell say at the Stanford office hours about prompting?"
    cited = pipeline.ask(question).citations[0].passage.chunk
    assert cited.parallel_text, "precondition: the answer cites the bilingual CS153 transcript"
    *_, (_, _, panel, _) = run(pipeline, question)
    card = panel.split('id="src-1-1"', 1)[1].split('<details class="context">', 1)[0]
    chinese, english = card.split('<div class="col"')[1:3]
    assert '<div class="lang">Chinese</div>' in chinese and '<div class="lang">English (original)</div>' in english
    assert "<mark>" in english and "<mark>" not in chinese  # an English question quotes the original


def test_a_failed_llm_shows_the_quoted_answer_under_a_notice(pipeline):
    from tests.test_llm_answers import llm_pipeline

    dead = llm_pipeline(pipeline, llm="openai", llm_base_url=f"http://127.0.0.1:{free_port()}/v1", llm_model="m",
                        llm_max_retries=0)
    *_, (chat, _, panel, turns) = run(dead, ASKELL)
    assert turns[0]["answer"]["fallback"] and turns[0]["answer"]["backend"] == "extractive"
    assert chat[-1]["content"].startswith("_") and "could not reach" in chat[-1]["content"]
    assert "(#src-1-1)" in chat[-1]["content"] and "Fallback" in panel and "Traceback" not in chat[-1]["content"]


def test_one_pipeline_answers_many_threads_at_once(settings):
    """A fresh pipeline (every lazy view unbuilt) hit by six threads gives the sequential answers."""
    from concurrent.futures import ThreadPoolExecutor

    from rag.factory import build_pipeline

    questions = [ASKELL, DARIO_RLHF, OFF_TOPIC, "克里斯·欧拉如何看待神经网络之美？", "阿莫迪怎么看监管？", "scaling laws"]
    shared = build_pipeline(settings)
    with ThreadPoolExecutor(len(questions)) as pool:
        together = list(pool.map(lambda q: shared.ask(q).to_json(), questions))
    for question, answer in zip(questions, together):
        alone = shared.ask(question).to_json()
        assert (answer["answer"], answer["citations"]) == (alone["answer"], alone["citations"])


@pytest.mark.parametrize("case", ALL_CASES, ids=ids(ALL_CASES))
def test_bad_input_is_a_message_and_the_next_question_works(pipeline, case: BadQuestion):
    *_, (chat, box, panel, turns) = run(pipeline, case.question, **case.options)
    if case.refusal is None:
        assert "(#src-1-1)" in chat[-1]["content"]
        return
    assert chat[-1]["content"].startswith("⚠️") and case.refusal in chat[-1]["content"].replace("\\", "")
    if not case.options:  # refused before searching: the text stays in the box to be edited
        assert box == case.question and panel == NO_SOURCES and turns == []
    *_, (chat, _, _, _) = run(pipeline, ASKELL, chat, turns)
    assert "(#src-" in chat[-1]["content"]


def test_not_covered_says_so_without_sources(pipeline):
    assert pipeline.ask(OFF_TOPIC).abstained, "precondition: the pipeline abstains on this question"
    *_, (chat, _, panel, _) = run(pipeline, OFF_TOPIC)
    assert "#src-" not in chat[-1]["content"] and "don't cover this question" in panel


def test_failures_are_messages_not_tracebacks(pipeline):
    class Broken:
        index, settings = pipeline.index, pipeline.settings

        def ask_stream(self, *args, **kwargs):
            raise RuntimeError("index exploded")
            yield  # a generator, like the real one

    *_, (chat, _, _, _) = run(Broken(), ASKELL)
    assert "Something went wrong" in chat[-1]["content"] and "exploded" not in chat[-1]["content"]
    assert re.search(r"request id `[0-9a-f]{12}`", chat[-1]["content"])  # the id of the logged traceback


def test_retry_asks_the_last_question_again(pipeline):
    *_, (chat, _, _, turns) = run(pipeline, ASKELL)
    *_, (again, _, _, turns_again) = list(retry(pipeline, chat, turns))
    assert again == chat and len(turns_again) == 1


def test_vote_appends_question_answer_citations_and_settings(pipeline, tmp_path):
    *_, (_, _, _, turns) = run(pipeline, ASKELL)
    voter = SimpleNamespace(settings=Settings(data_dir=tmp_path))
    status, box = vote(voter, turns, "wrong speaker", False, 1, None)
    assert "saved" in status and box == ""
    [entry] = read_feedback(feedback_path(voter.settings))
    assert entry["vote"] == "down" and entry["comment"] == "wrong speaker" and entry["question"] == ASKELL
    assert entry["citations"] and entry["settings"]["top_k"] == voter.settings.top_k
    assert "Only finished answers" in vote(voter, turns, "", True, 0, None)[0]  # the user's message


def test_markup_in_corpus_or_model_text_is_shown_literally(pipeline):
    passage = pipeline.search(ASKELL).passages[0]
    passage.shown_text = '<img src=x onerror="alert(1)"> **bold** & more'
    card = passage_card(passage, "src-1-1", "[1]", "en", ([], []), "**bold**")
    assert "<img" not in card and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in card
    injected = Answer("q", 'See [here](http://evil.example) <script>x</script> [1]', False, [], [])
    message = answer_markdown(injected, 2)
    assert "[here](http" not in message and "<script>" not in message and "(#src-2-1)" in message
    assert escape_markdown("# title\n- item") == "\\# title\n\\- item"


def test_settings_panel_and_auth_never_leak_secrets(tmp_path):
    settings = Settings(data_dir=tmp_path, llm="openai", llm_base_url="http://me:hunter2@llm.local:8001/v1",
                        llm_api_key=SecretStr("sk-secret"), web_auth=SecretStr("ann:pw:with:colons"))
    shown = json.dumps(public_settings(SimpleNamespace(settings=settings)))
    assert "hunter2" not in shown and "sk-secret" not in shown and "http://llm.local:8001/v1" in shown
    assert web_auth(SimpleNamespace(settings=settings)) == ("ann", "pw:with:colons")


def test_the_chat_mounts_in_a_fastapi_app(pipeline):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from ui.app import mount

    app = mount(FastAPI(), pipeline, path="/interviews")
    with TestClient(app) as client:
        page = client.get("/interviews/")
        assert page.status_code == 200 and "Interview Q&A: Anthropic and Claude" in page.text.replace("&amp;", "&")
        assert any(d.get("api_name") == "chat" for d in client.get("/interviews/config").json()["dependencies"])


def test_first_run_indexing_reports_progress_then_readiness_or_the_reason():
    indexing = Indexing()
    assert indexing.message() == "_Preparing the index…_"
    indexing.progress(340, 1200)
    assert "340 of 1,200 passages embedded (28%)" in indexing.message()

    class Indexed:
        def ensure_ingested(self, show_progress, on_progress):
            on_progress(1200, 1200)

    indexing.run(Indexed())
    assert indexing.message() == ""

    class Unusable:
        def ensure_ingested(self, show_progress, on_progress):
            raise UserError("The index was built with another embedder.")

    failed = Indexing()
    failed.run(Unusable())
    assert failed.message() == "⚠️ The index is not usable: The index was built with another embedder."


def test_basic_auth_guards_the_page_and_the_api(pipeline):
    import httpx
    from gradio_client import Client

    from ui.app import build_app, launch

    guarded = copy.copy(pipeline)
    guarded.settings = pipeline.settings.model_copy(update={"web_auth": SecretStr("ann:s3cret")})
    app = build_app(guarded)
    port = free_port()
    launch(app, guarded, "127.0.0.1", port, prevent_thread_lock=True, quiet=True)
    try:
        url = f"http://127.0.0.1:{port}/"
        assert httpx.get(url + "config", timeout=10).status_code == 401
        answer = Client(url, auth=("ann", "s3cret"), verbose=False).predict(ASKELL, api_name="/chat")
        assert answer["citations"]
    finally:
        app.close(verbose=False)


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


# ---------------------------------------------------------------------------- `rag serve`, real browser


@pytest.fixture(scope="module")
def server_url(pipeline, data_dir):
    """`rag serve` in its own process, as a user starts it, on the session's index."""
    with served({"RAG_DATA_DIR": str(data_dir)}) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (make chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser, server_url):
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server_url)
    page.locator("#question textarea").wait_for(timeout=30_000)
    yield page
    page.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def ask_in_browser(page, question: str, turn: int | None = None) -> None:
    """Type and send; with `turn`, wait until that turn's answer is finished."""
    box = page.locator("#question textarea")
    box.fill(question)
    box.press("Enter")
    if turn is not None:
        page.locator(f"#turn-{turn} .how").wait_for(state="attached", timeout=60_000)


@pytest.mark.browser
def test_browser_answer_links_each_marker_to_askells_passage(page, pipeline, tmp_path):
    from playwright.sync_api import expect

    first = pipeline.ask(ASKELL).citations[0].passage.chunk
    assert first.speaker == "Amanda Askell", "precondition: the pipeline cites Askell first"
    ask_in_browser(page, ASKELL, turn=1)
    bot = page.locator('#chat [data-testid="bot"]').last
    expect(bot).to_contain_text("[1]")
    bot.locator('a[href="#src-1-1"]').click()
    card = page.locator("#src-1-1")
    expect(card).to_have_class("source focus")
    expect(card).to_be_in_viewport()
    expect(card.locator(".who strong")).to_have_text("Amanda Askell")
    expect(card).to_contain_text(first.source)
    expect(card.locator("mark")).to_be_visible()
    card.get_by_text("Show context").click()
    expect(card.locator(".ctx").first).to_be_visible()
    shot = tmp_path / "screenshot.png"
    page.screenshot(path=str(shot))
    if os.environ.get("RAG_UPDATE_SCREENSHOT"):  # set it to refresh the README's picture
        shutil.copy(shot, PROJECT_ROOT / "docs" / "screenshot.png")


@pytest.mark.browser
def test_browser_follow_up_keeps_the_topic(page, pipeline):
    from playwright.sync_api import expect

    ask_in_browser(page, DARIO_RLHF, turn=1)
    ask_in_browser(page, FOLLOW_UP, turn=2)
    history = [{"role": "user", "content": DARIO_RLHF}, {"role": "assistant", "content": pipeline.ask(DARIO_RLHF).text}]
    expected = pipeline.ask(FOLLOW_UP, history)
    turn = page.locator("#turn-2")
    expect(turn.locator(".how")).to_contain_text("What did Amanda Askell say about RLHF?")
    speakers = turn.locator(".source .who strong").all_inner_texts()
    assert speakers == [c.passage.chunk.attribution for c in expected.citations]


@pytest.mark.browser
def test_browser_speaker_filter_narrows_the_sources(page):
    page.locator("#filters").get_by_text("Filters and mode").click()
    page.get_by_role("combobox", name="Only this speaker").click()
    page.get_by_role("option", name="Lex Fridman").click()
    ask_in_browser(page, "sycophancy", turn=1)
    speakers = set(page.locator("#turn-1 .source .who strong").all_inner_texts())
    assert speakers == {"Lex Fridman"}


@pytest.mark.browser
def test_browser_thumbs_down_lands_in_the_feedback_file(page, settings):
    from playwright.sync_api import expect

    before = len(read_feedback(feedback_path(settings))) if feedback_path(settings).exists() else 0
    ask_in_browser(page, ASKELL, turn=1)
    page.locator("#comment textarea").fill("browser test: not what I asked")
    page.locator("#chat").get_by_role("button", name="Dislike").last.click()
    expect(page.locator("#feedback-status")).to_contain_text("saved", timeout=30_000)
    entries = read_feedback(feedback_path(settings))
    assert len(entries) == before + 1
    assert entries[-1]["vote"] == "down" and entries[-1]["question"] == ASKELL
    assert entries[-1]["comment"] == "browser test: not what I asked" and entries[-1]["citations"]


@pytest.mark.browser
def test_browser_empty_question_gets_a_message(page):
    from playwright.sync_api import expect

    ask_in_browser(page, "")
    expect(page.locator('#chat [data-testid="bot"]').last).to_contain_text("The question is empty.", timeout=30_000)


def test_gradio_client_chat(server_url, pipeline):
    from gradio_client import Client

    client = Client(server_url, verbose=False)
    answer = client.predict(ASKELL, api_name="/chat")
    assert answer["citations"] == pipeline.ask(ASKELL).to_json()["citations"]
    follow = client.predict(FOLLOW_UP, [{"role": "user", "content": DARIO_RLHF},
                                        {"role": "assistant", "content": "…"}], api_name="/chat")
    assert follow["query"]["searched"] == "What did Amanda Askell say about RLHF?"
    with pytest.raises(Exception, match="The question is empty"):
        client.predict("", api_name="/chat")


def call_chat(server_url: str, *data) -> tuple[str, object]:
    """`/chat` over Gradio's REST API, as curl would: the stream's last event and its data.

    The body is ASCII JSON, so a lone surrogate travels as the escape `\\ud800` (httpx's own JSON
    encoder refuses to send one)."""
    started = httpx.post(f"{server_url}gradio_api/call/chat", content=json.dumps({"data": list(data)}),
                         headers={"Content-Type": "application/json"}, timeout=30)
    assert started.status_code == 200, started.text
    stream = httpx.get(f"{server_url}gradio_api/call/chat/{started.json()['event_id']}", timeout=300)
    event, payload = re.findall(r"^event: (\w+)\ndata: (.*)$", stream.text, re.MULTILINE)[-1]
    return event, json.loads(payload)


@pytest.mark.parametrize("case", ALL_CASES, ids=ids(ALL_CASES))
def test_chat_api_refuses_bad_input_by_name_and_keeps_serving(server_url, case: BadQuestion):
    event, data = call_chat(server_url, case.question, [], case.options.get("speaker"), None, case.options.get("k"))
    if case.refusal:
        assert event == "error" and case.refusal in str(data)
    else:
        assert event == "complete" and data[0]["citations"] and not data[0]["abstained"]
    event, data = call_chat(server_url, ASKELL, [], None, None, None)
    assert event == "complete" and data[0]["citations"]

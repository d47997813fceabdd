"""`rag slack --http` as a real subprocess (real Bolt app, real pipeline and index) driven by
signed Events API requests, against the mock Web API in `tests/slack_mock.py`; plus the
rendering functions called directly."""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
import yaml
from click.testing import CliRunner
from pydantic import SecretStr
from slack_bolt import BoltContext

from rag.factory import build_index
from rag.ingest.build import FileLimits, ingest
from rag.settings import Settings
from slackbot.app import SlackBot
from slackbot.blocks import MAX_BLOCKS, SECTION_CHARS, answer_messages, from_slack, source_line
from slackbot.cli import slack
from tests.bad_questions import QUESTION_CASES, BadQuestion, ids
from tests.conftest import free_port
from tests.llm_servers import FakeAnthropic, llm_pipeline
from tests.slack_mock import BOT_USER, TEAM, MockSlack

BOT_TOKEN = "xoxb-1111-2222-testbottoken"
SECRET = "8f742231b10e8888abcd0123456789ab"
ALLOWED = "C_ALLOWED"
# A transcript whose passage carries Slack markup: if it reached Slack unescaped it would ping.
MARKUP_TRANSCRIPT = """Lex Fridman: Is there a mascot at the office?

Amanda Askell: Our office parrot learned to squawk whenever someone typed <!channel> & <@U0ADMIN> into the team chat, so the parrot became our unofficial mascot for calibration.
"""


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def bot_data_dir(tmp_path_factory, pipeline, data_dir) -> Path:
    """A copy of the session's index plus the markup transcript (the shared index stays untouched)."""
    root = tmp_path_factory.mktemp("slack")
    copy = root / "data"
    shutil.copytree(data_dir, copy, ignore=shutil.ignore_patterns("eval-runs", "feedback.jsonl", "slack"))
    (root / "office_notes.txt").write_text(MARKUP_TRANSCRIPT, encoding="utf-8")
    report = ingest([root / "office_notes.txt"], build_index(Settings(data_dir=copy)), pipeline.embedder,
                    pipeline.settings.chunk_tokens, FileLimits(max_bytes=int(20e6)), show_progress=False)
    assert report.added and not report.errors
    return copy


@pytest.fixture(scope="module")
def mock():
    server = MockSlack()
    yield server
    server.close()


@pytest.fixture(scope="module")
def bot(bot_data_dir, mock, tmp_path_factory):
    """`rag slack --http` on a free port, debug logging on (to prove tokens stay out of it)."""
    port = free_port()
    log = tmp_path_factory.mktemp("slack-log") / "bot.log"
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("SLACK_", "RAG_SLACK_"))}
    env.update(RAG_DATA_DIR=str(bot_data_dir), SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SECRET,
               RAG_SLACK_API_URL=mock.url, RAG_SLACK_CHANNELS=json.dumps([ALLOWED]), RAG_EMBEDDER_THREADS="1")
    with open(log, "w") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "rag", "slack", "--http", "--port", str(port),
                                    "--log-level", "debug"], env=env, stdout=stderr, stderr=stderr)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        yield {"url": f"{url}/slack/events", "log": log, "data_dir": bot_data_dir}
    finally:
        process.terminate()
        process.wait(timeout=30)


# ---------------------------------------------------------------------------- helpers


def signed_post(bot: dict, body: bytes, content_type: str, *, secret: str = SECRET, age: float = 0,
                headers: dict | None = None, sign: bool = True) -> httpx.Response:
    timestamp = str(int(time.time() - age))
    signature = "v0=" + hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    sent = {"Content-Type": content_type, **(headers or {})}
    if sign:
        sent.update({"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signature})
    return httpx.post(bot["url"], content=body, headers=sent, timeout=10)


def event_body(event: dict, event_id: str) -> bytes:
    return json.dumps({"token": "unused", "team_id": TEAM, "api_app_id": "A1", "type": "event_callback",
                       "event_id": event_id, "event_time": int(time.time()), "event": event,
                       "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True}]}).encode()


def send_event(bot: dict, mock: MockSlack, event: dict, event_id: str, **kwargs) -> httpx.Response:
    """What Slack does when someone writes: the message joins the channel, then the event is delivered."""
    if event.get("user") and event["type"] in ("app_mention", "message") and not event.get("subtype"):
        mock.add_message(event["channel"], event["ts"], event["text"], event["user"], event.get("thread_ts"))
    return signed_post(bot, event_body(event, event_id), "application/json", **kwargs)


def message(channel: str, ts: str, text: str, *, kind: str = "message", user: str = "U_ASKER", **fields) -> dict:
    return {"type": kind, "channel": channel, "ts": ts, "text": text, "user": user, "event_ts": ts,
            "channel_type": "im" if channel.startswith("D") else "channel", **fields}


def answers_in(mock: MockSlack, channel: str, thread_ts: str | None) -> list[dict]:
    """Wait for the answers the bot gave in that thread (top level: None): the params of the
    updates that turned its placeholders into final answers (those carry the thumbs buttons)."""
    def find():
        mine = {m["ts"] for m in list(mock.messages) if m["channel"] == channel and m["user"] == BOT_USER
                and m.get("thread_ts") == thread_ts}
        return [c.params for c in mock.calls_to("chat.update", channel=channel)
                if c.params["ts"] in mine and any(b["type"] == "actions" for b in c.params.get("blocks", []))]
    return mock.wait_for(find)


def text_of(blocks: list[dict]) -> str:
    parts = []
    for block in blocks:
        if block["type"] == "section":
            parts.append(block["text"]["text"])
        elif block["type"] == "context":
            parts += [e["text"] for e in block["elements"]]
    return "\n".join(parts)


def sources_and_footer(blocks: list[dict]) -> tuple[str, str]:
    text = text_of(blocks)
    return text[text.index("*Sources*"):], text_of([b for b in blocks if b["type"] == "context"])


# ---------------------------------------------------------------------------- over HTTP


def test_mention_answered_in_its_thread_once_despite_a_retry_then_a_follow_up_uses_the_thread(bot, mock):
    asked = mock.new_ts()
    mention = message(ALLOWED, asked, f"<@{BOT_USER}> What did Askell say about sycophancy?", kind="app_mention")
    started = time.monotonic()
    assert send_event(bot, mock, mention, "Ev_MENTION").status_code == 200
    assert time.monotonic() - started < 3  # acknowledged before answering
    retry = send_event(bot, mock, mention, "Ev_MENTION", headers={"X-Slack-Retry-Num": "1",
                                                                  "X-Slack-Retry-Reason": "http_timeout"})
    assert retry.status_code == 200

    first = answers_in(mock, ALLOWED, asked)[0]  # posted with thread_ts = the mention's ts
    assert re.search(r"\[1\]", text_of(first["blocks"]))
    sources, footer = sources_and_footer(first["blocks"])
    assert "*[1]*" in sources and "Askell" in sources and "Answered by `extractive`" in footer

    follow_up = message(ALLOWED, mock.new_ts(), "and Amodei?", thread_ts=asked)
    assert send_event(bot, mock, follow_up, "Ev_FOLLOW_UP").status_code == 200
    both = mock.wait_for(lambda: len(found := answers_in(mock, ALLOWED, asked)) == 2 and found)
    assert mock.calls_to("conversations.replies", channel=ALLOWED, ts=asked)
    _, footer = sources_and_footer(both[1]["blocks"])
    assert re.search(r"searched as “.*Amodei.*sycophancy", footer), footer  # the thread was the history

    not_questions = [  # in the same thread, where replies are follow-ups
        message(ALLOWED, mock.new_ts(), "bot chatter", user="U_OTHERBOT", bot_id="B_OTHER", thread_ts=asked),
        message(ALLOWED, mock.new_ts(), "and Olah?", subtype="message_changed", thread_ts=asked),
        message(ALLOWED, mock.new_ts(), "my own words", user=BOT_USER, thread_ts=asked),
    ]
    for n, event in enumerate(not_questions):
        assert send_event(bot, mock, event, f"Ev_NOT_A_QUESTION_{n}").status_code == 200
    time.sleep(1.5)
    posted = [c for c in mock.calls_to("chat.postMessage", channel=ALLOWED, thread_ts=asked) if c.status == 200]
    assert len(posted) == 2  # one per question: nothing for the retry, the other bot, the edit, itself
    logged = request_lines(bot)
    assert [(r["interface"], r["status"]) for r in logged] == [("slack", "ok")] * 2  # one line per answer
    assert logged[0]["request_id"] in json.dumps(first["blocks"])  # its thumbs carry the same id


def request_lines(bot: dict) -> list[dict]:
    return [json.loads(line) for line in bot["log"].read_text().splitlines() if '"logger": "rag.requests"' in line]


@pytest.mark.parametrize("case", QUESTION_CASES, ids=ids(QUESTION_CASES))
def test_bad_questions_get_a_warning_or_an_answer_and_the_bot_stays_up(bot, mock, case: BadQuestion):
    asked = mock.new_ts()
    mention = message(ALLOWED, asked, f"<@{BOT_USER}> {case.question}", kind="app_mention")
    assert send_event(bot, mock, mention, f"Ev_BAD_{asked}").status_code == 200
    if case.refusal:
        def warnings():
            mine = {m["ts"] for m in list(mock.messages) if m["user"] == BOT_USER and m.get("thread_ts") == asked}
            return [c.params["text"] for c in mock.calls_to("chat.update", channel=ALLOWED)
                    if c.params["ts"] in mine and c.params["text"].startswith(":warning:")]
        assert case.refusal in mock.wait_for(warnings)[0]
    else:
        assert "Askell" in text_of(answers_in(mock, ALLOWED, asked)[0]["blocks"])
    assert request_lines(bot)[-1]["status"] == ("refused" if case.refusal else "ok")


def test_direct_message_survives_a_429_and_ignored_messages_get_nothing(bot, mock):
    ignored = [
        message(ALLOWED, mock.new_ts(), "<@U_NEW> has joined the channel", subtype="channel_join"),
        message(ALLOWED, mock.new_ts(), "people talking, no mention, no thread"),
        message("C_ELSEWHERE", mock.new_ts(), f"<@{BOT_USER}> What is the race to the top?", kind="app_mention"),
    ]
    for n, event in enumerate(ignored):
        assert send_event(bot, mock, event, f"Ev_IGNORED_{n}").status_code == 200
    mock.queue("chat.postMessage", channel="D_ASKER", status=429, error="ratelimited", retry_after=1)
    dm = message("D_ASKER", mock.new_ts(), "克里斯·欧拉如何看待神经网络之美？")
    assert send_event(bot, mock, dm, "Ev_DM").status_code == 200

    answer = answers_in(mock, "D_ASKER", None)  # in the DM itself, not a thread
    assert [c.status for c in mock.calls_to("chat.postMessage", channel="D_ASKER")] == [429, 200]
    assert len(answer) == 1 and "[1]" in text_of(answer[0]["blocks"])
    ignored_ts = {e["ts"] for e in ignored}
    assert not [c for c in mock.calls if c.channel == "C_ELSEWHERE" or c.params.get("thread_ts") in ignored_ts]


def test_markup_in_passages_and_questions_is_escaped(bot, mock):
    asked = mock.new_ts()
    mention = message(ALLOWED, asked, f"<@{BOT_USER}> <!channel> What did Askell say about the office parrot?",
                      kind="app_mention")
    assert send_event(bot, mock, mention, "Ev_MARKUP").status_code == 200
    text = text_of(answers_in(mock, ALLOWED, asked)[0]["blocks"])
    assert "parrot" in text and "&lt;@U0ADMIN&gt;" in text and "&amp;" in text
    outgoing = json.dumps([c.params for c in mock.calls if c.method.startswith("chat.")], ensure_ascii=False)
    assert "<@U0ADMIN>" not in outgoing and "<!" not in outgoing and "<@" not in outgoing.replace("<@U_ASKER>", "")


def test_slash_command_answers_in_a_thread_that_takes_follow_ups_and_thumbs_record_feedback(bot, mock):
    form = urlencode({"command": "/ask", "text": "What did Olah say about the beauty of neural networks?", "channel_id": ALLOWED,
                      "user_id": "U_ASKER", "team_id": TEAM, "trigger_id": "1.2.3", "api_app_id": "A1",
                      "response_url": mock.url + "response"}).encode()
    acknowledged = signed_post(bot, form, "application/x-www-form-urlencoded")
    assert acknowledged.status_code == 200 and "Looking that up" in acknowledged.text
    asked = mock.wait_for(lambda: [c for c in mock.calls_to("chat.postMessage", channel=ALLOWED)
                                   if "asked: What did Olah say about the beauty" in c.params.get("text", "")])
    parent = next(m["ts"] for m in mock.messages if m["text"] == asked[0].params["text"])
    answer = answers_in(mock, ALLOWED, parent)[0]
    follow_up = message(ALLOWED, mock.new_ts(), "and Askell?", thread_ts=parent)
    assert send_event(bot, mock, follow_up, "Ev_ASK_FOLLOW_UP").status_code == 200
    both = mock.wait_for(lambda: len(found := answers_in(mock, ALLOWED, parent)) == 2 and found)
    _, footer = sources_and_footer(both[1]["blocks"])
    assert re.search(r"searched as “.*Askell.*beauty", footer), footer  # the /ask question was the history
    button = next(b for b in answer["blocks"] if b["type"] == "actions")["elements"][0]
    click = {"type": "block_actions", "team": {"id": TEAM}, "user": {"id": "U_ASKER"}, "api_app_id": "A1",
             "channel": {"id": ALLOWED}, "container": {"type": "message", "message_ts": answer["ts"]},
             "message": {"ts": answer["ts"], "thread_ts": parent}, "trigger_id": "1.2.4", "token": "unused",
             "actions": [{"type": "button", "block_id": "feedback", "action_id": button["action_id"],
                          "value": button["value"]}]}
    assert signed_post(bot, urlencode({"payload": json.dumps(click)}).encode(),
                       "application/x-www-form-urlencoded").status_code == 200
    thanks = mock.wait_for(lambda: mock.calls_to("chat.postEphemeral", channel=ALLOWED, user="U_ASKER"))
    assert "recorded" in thanks[0].params["text"] and thanks[0].params["thread_ts"] == parent
    vote = json.loads((bot["data_dir"] / "feedback.jsonl").read_text().splitlines()[-1])
    assert (vote["interface"], vote["vote"], vote["question"]) == (
        "slack", "up", "What did Olah say about the beauty of neural networks?")
    assert vote["citations"]


def test_unsigned_forged_and_stale_requests_are_rejected(bot, mock):
    event = message(ALLOWED, mock.new_ts(), f"<@{BOT_USER}> What is the race to the top?", kind="app_mention")
    body = event_body(event, "Ev_FORGED")
    assert signed_post(bot, body, "application/json", sign=False).status_code == 401
    assert signed_post(bot, body, "application/json", secret="0" * 32).status_code == 401
    assert signed_post(bot, body, "application/json", age=6 * 60).status_code == 401  # outside the 5-minute window
    time.sleep(1)
    assert not [c for c in mock.calls if c.params.get("thread_ts") == event["ts"]]


def test_a_failure_is_apologised_for_with_a_request_id_and_tokens_never_logged(bot, mock):
    thread = mock.new_ts()
    mock.add_message(ALLOWED, thread, "An earlier question", "U_ASKER")
    mock.queue("conversations.replies", channel=ALLOWED, error="internal_error")
    mention = message(ALLOWED, mock.new_ts(), f"<@{BOT_USER}> and Olah?", kind="app_mention", thread_ts=thread)
    assert send_event(bot, mock, mention, "Ev_FAILS").status_code == 200
    apology = mock.wait_for(lambda: [c for c in mock.calls_to("chat.postMessage", channel=ALLOWED, thread_ts=thread)])
    request_id = re.search(r"request id `(\w+)`", apology[0].params["text"]).group(1)
    assert "Traceback" not in apology[0].params["text"]
    log = bot["log"].read_text()
    assert f"request {request_id} failed" in log and "Traceback" in log
    assert "headers: {" in log and BOT_TOKEN not in log and SECRET not in log  # debug logs every request
    assert all(c.token == f"Bearer {BOT_TOKEN}" for c in mock.calls)


# ---------------------------------------------------------------------------- start-up and rendering


@pytest.mark.parametrize("args, env, variable", [
    (["--http"], {"SLACK_BOT_TOKEN": BOT_TOKEN}, "SLACK_SIGNING_SECRET is not set"),
    (["--http"], {"SLACK_BOT_TOKEN": "xoxp-a-user-token", "SLACK_SIGNING_SECRET": SECRET}, "SLACK_BOT_TOKEN is malformed"),
    ([], {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": BOT_TOKEN}, "SLACK_APP_TOKEN is malformed"),
])
def test_start_up_stops_naming_the_missing_or_malformed_variable(args, env, variable):
    cleared = {k: None for k in os.environ if k.upper().startswith(("SLACK_", "RAG_SLACK_"))}
    result = CliRunner().invoke(slack, args, env={**cleared, **env})
    assert result.exit_code == 1 and variable in result.output
    assert BOT_TOKEN not in result.output


def test_each_source_quotes_the_sentence_the_answer_rests_on(pipeline):
    payload = pipeline.ask("What did Dario Amodei say about the race to the top?").to_json()
    for citation in payload["citations"]:
        quote = citation["quote"]
        assert quote and quote in citation["text"] and quote in payload["answer"]  # the extractive answer quotes it
        assert html.unescape(source_line(citation)).split("\n> ")[1].rstrip("…") in quote
    assert any(not c["text"].startswith(c["quote"]) for c in payload["citations"])  # not just the opening


def test_long_answers_split_within_slack_limits_and_everything_is_escaped(pipeline):
    payload = pipeline.ask("What did Askell say about sycophancy?").to_json()
    long_text = (payload["answer"] + "\n") * 200 + "阿曼达说<!channel>&" * 4000  # a line with no space to cut at
    citations = [dict(c, supported=False if i == 0 else c["supported"]) for i, c in enumerate(payload["citations"] * 60)]
    messages = answer_messages({**payload, "answer": long_text, "citations": citations}, "abc123")
    blocks = [b for m in messages for b in m]
    assert len(messages) > 1 and all(len(m) <= MAX_BLOCKS for m in messages)
    assert all(len(b["text"]["text"]) <= SECTION_CHARS for b in blocks if b["type"] == "section")
    assert messages[-1][-1]["type"] == "actions" and messages[-1][-2]["type"] == "context"
    answer_sections = [b["text"]["text"] for b in blocks if b["type"] == "section" and "*Sources*" not in b["text"]["text"]
                       and not b["text"]["text"].startswith("*[")]
    shown = html.unescape("".join(answer_sections))
    assert "".join(shown.split()) == "".join(long_text.split())  # nothing lost, nothing cut inside an entity
    assert "<!channel>" not in json.dumps(messages) and ":warning: _This passage does not back" in json.dumps(messages)


def test_abstention_is_said_plainly_and_slack_markup_in_questions_is_read(pipeline):
    payload = pipeline.ask("What is the capital of Peru?").to_json()
    blocks = answer_messages(payload)[0]
    assert payload["abstained"] and "*Sources*" not in text_of(blocks)
    assert blocks[0]["text"]["text"] == payload["answer"]
    assert from_slack(f"<@{BOT_USER}> <!channel> what did <@U2|amanda> say &amp; <https://x.io|here>?", BOT_USER) \
        == "@channel what did amanda say & here?"


def test_a_streaming_llm_answer_is_shown_progressively_at_a_limited_rate(pipeline, mock, tmp_path):
    """An LLM answer streamed over 2 s: the draft is shown a few times, never faster than the
    interval, then replaced by the checked answer, whose unsupported claim is marked."""
    with FakeAnthropic() as fake:
        fake.pause = 0.15
        fake.replies = ["Askell says sycophancy means telling people what they want to hear [1]. "
                        "She also founded a bakery [2]."]
        pipe = llm_pipeline(pipeline, llm="anthropic", llm_model="claude-test", llm_base_url=fake.base_url,
                            llm_api_key=SecretStr(fake.api_key))
        settings = pipe.settings.model_copy(update={
            "data_dir": tmp_path, "slack_bot_token": SecretStr(BOT_TOKEN), "slack_api_url": mock.url,
            "slack_update_interval": 0.4})
        bot = SlackBot(pipe, settings, http=True)
        asked = mock.new_ts()
        bot.answer(bot.app.client, BoltContext(bot_user_id=BOT_USER), ALLOWED, "What did Askell say about sycophancy?",
                   thread_ts=asked, asked_ts=asked)
    placeholder = next(m["ts"] for m in mock.messages if m.get("thread_ts") == asked)
    updates = mock.calls_to("chat.update", channel=ALLOWED, ts=placeholder)
    drafts, final = updates[:-1], text_of(updates[-1].params["blocks"])
    assert len(drafts) >= 2 and all("writing" in text_of(c.params["blocks"]) for c in drafts)
    assert all(later.at - earlier.at >= 0.35 for earlier, later in zip(drafts, drafts[1:]))
    assert "Answered by `anthropic` (claude-test)" in final and ":warning:" in final


def test_the_readme_shows_the_manifest_in_the_repo():
    root = Path(__file__).resolve().parent.parent
    shown = re.search(r"## Slack.*?```yaml\n(.*?)```", (root / "README.md").read_text(), re.S).group(1)
    assert yaml.safe_load(shown) == yaml.safe_load((root / "slackbot" / "manifest.yaml").read_text())

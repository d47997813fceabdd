"""The Bolt app: mentions, direct messages, thread follow-ups and `/ask` become pipeline
questions; the pipeline's events become threaded Block Kit messages (`slackbot.blocks`).

Bolt acknowledges events before the listener runs (and `/ask` acks first thing), so Slack gets
its answer within 3 seconds and the question is answered afterwards on Bolt's worker threads.
The bot renders what the pipeline decided (abstention, follow-up rewriting, citation checks)
and decides only Slack matters: whom to answer, where, and how often to update.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Sequence

from slack_bolt import App, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

from rag.errors import UserError
from rag.events import Completed, TextDelta
from rag.feedback import record_feedback
from rag.retrieve.followups import ChatMessage
from rag.logs import new_request_id
from rag.models import Answer
from rag.pipeline import Pipeline
from rag.settings import Settings

from .blocks import (FEEDBACK_ACTION, NOTIFICATION_CHARS, THINKING, answer_messages, draft_blocks, escape, from_slack,
                     notification_text, section)
from .state import SharedState

log = logging.getLogger(__name__)

HISTORY_MESSAGES = 10  # the thread's latest turns given to the pipeline as history
ANSWERED_SUBTYPES = {None, "thread_broadcast"}  # edits, deletions, joins, bot posts… are not questions
NOT_ENABLED = "I'm not enabled in this channel."
USAGE = "Ask a question after the command, e.g. `/ask What did Askell say about sycophancy?`"
ASKED = "<@{user}> asked: {question}"  # the bot's post of an /ask question, opening its thread
_ASKED = re.compile(r"<@\w+> asked: (?P<question>.*)", re.S)


def apology(request_id: str) -> str:
    return (f":warning: Sorry, something went wrong while answering (request id `{request_id}`). "
            "Please try again or rephrase the question.")


def web_client(settings: Settings) -> WebClient:
    """The Web API client: Slack's 429s are waited out (their Retry-After), dropped connections retried."""
    return WebClient(token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url,
                     retry_handlers=[ConnectionErrorRetryHandler(), RateLimitErrorRetryHandler(max_retry_count=3)])


class SlackBot:
    def __init__(self, pipeline: Pipeline, settings: Settings, http: bool):
        self.pipeline = pipeline
        self.settings = settings
        self.state = SharedState(settings.data_dir / "slack")
        self.answering = threading.Lock()  # one question at a time per process, as in the web chat
        secret = settings.slack_signing_secret
        self.app = App(client=web_client(settings), signing_secret=secret.get_secret_value() if secret else "",
                       request_verification_enabled=http)  # Socket Mode needs no signatures
        self.app.event("app_mention")(self.on_mention)
        self.app.event("message")(self.on_message)
        self.app.command("/ask")(self.on_command)
        self.app.action(FEEDBACK_ACTION)(self.on_vote)

    # ------------------------------------------------------------------ who is answered

    def allowed(self, team_id: str | None, channel_id: str | None) -> bool:
        """The allow-lists in settings; channels restrict channels, not direct messages."""
        s = self.settings
        if s.slack_workspaces and team_id not in s.slack_workspaces:
            return False
        is_dm = (channel_id or "").startswith("D")
        return is_dm or not s.slack_channels or channel_id in s.slack_channels

    def _first_delivery(self, body: dict, context: BoltContext, channel: str) -> bool:
        if not self.allowed(context.team_id, channel):
            log.info("event %s in %s ignored: not in the allow-list", body.get("event_id"), channel)
            return False
        if not self.state.claim_event(body.get("event_id", "")):
            log.info("event %s is already being answered; retry ignored", body.get("event_id"))
            return False
        return True

    @staticmethod
    def _is_own(message: dict, context: BoltContext) -> bool:
        return message.get("user") == context.bot_user_id or bool(
            context.bot_id and message.get("bot_id") == context.bot_id)

    def on_mention(self, body: dict, event: dict, client: WebClient, context: BoltContext) -> None:
        """`@bot question` in a channel: answered in a thread under it (with the thread as history
        when the mention is itself in a thread)."""
        if event.get("bot_id") or event.get("subtype") not in ANSWERED_SUBTYPES:
            return
        channel = event["channel"]
        if not self._first_delivery(body, context, channel):
            return
        thread = event.get("thread_ts") or event["ts"]
        self.answer(client, context, channel, from_slack(event.get("text", ""), context.bot_user_id),
                    thread_ts=thread, asked_ts=event["ts"], read_thread=thread != event["ts"])

    def on_message(self, body: dict, event: dict, client: WebClient, context: BoltContext) -> None:
        """A direct message, or a reply in a thread the bot has answered in."""
        if (event.get("subtype") not in ANSWERED_SUBTYPES or event.get("bot_id")
                or not event.get("user") or event.get("user") == context.bot_user_id):
            return
        if f"<@{context.bot_user_id}" in event.get("text", ""):
            return  # a mention: its app_mention event answers it
        channel, thread = event["channel"], event.get("thread_ts")
        in_dm = event.get("channel_type") == "im"
        if not (in_dm or thread) or not self._first_delivery(body, context, channel):
            return
        replies = None
        if thread and not in_dm:
            try:
                replies = self.thread_messages(client, channel, thread)
            except SlackApiError:
                log.exception("could not read thread %s in %s", thread, channel)
                return
            if not any(self._is_own(m, context) for m in replies):
                return  # people talking among themselves
        self.answer(client, context, channel, from_slack(event.get("text", ""), context.bot_user_id),
                    thread_ts=thread, asked_ts=event["ts"], read_thread=bool(thread), replies=replies)

    def on_command(self, ack, command: dict, client: WebClient, context: BoltContext) -> None:
        """`/ask question`: an ephemeral acknowledgement, then the question and its answer in a thread."""
        channel, user = command["channel_id"], command["user_id"]
        if not self.allowed(context.team_id, channel):
            ack(NOT_ENABLED)
            return
        question = from_slack(command.get("text", ""), context.bot_user_id)
        if not question:
            ack(USAGE)
            return
        ack(f"Looking that up: {escape(question)}")
        try:
            parent = client.chat_postMessage(channel=channel, text=ASKED.format(user=user, question=escape(question)))
        except SlackApiError as exc:
            log.warning("/ask: cannot post in %s: %s", channel, exc.response.get("error"))
            client.chat_postEphemeral(channel=channel, user=user,
                                      text="I can't post in this conversation; invite me first (`/invite @bot`).")
            return
        self.answer(client, context, channel, question, thread_ts=parent["ts"], asked_ts=parent["ts"])

    def on_vote(self, ack, body: dict, action: dict, client: WebClient, context: BoltContext) -> None:
        """A thumbs button: the vote joins the web chat's feedback log, with the rated answer."""
        ack()
        channel, user = body["channel"]["id"], body["user"]["id"]
        if not self.allowed(context.team_id, channel):
            return
        vote = FEEDBACK_ACTION.match(action["action_id"]).group(1)
        record = self.state.load_answer(action.get("value", ""))
        if record is None:
            text = "Sorry, this answer is too old to rate."
        else:
            record_feedback(self.settings, interface="slack", vote=vote, answer=record["answer"],
                            history=record["history"], user=user)
            text = f"Thanks, your :{'thumbsup' if vote == 'up' else 'thumbsdown'}: is recorded."
        client.chat_postEphemeral(channel=channel, user=user, text=text,
                                  thread_ts=body.get("message", {}).get("thread_ts"))

    # ------------------------------------------------------------------ answering

    def thread_messages(self, client: WebClient, channel: str, thread_ts: str) -> list[dict]:
        return client.conversations_replies(channel=channel, ts=thread_ts, limit=200)["messages"]

    def history(self, replies: Sequence[dict], asked_ts: str, context: BoltContext) -> list[ChatMessage]:
        """The thread's turns before the question: people's as "user", the bot's as "assistant"
        (its post of an /ask question is the asker's turn)."""
        turns = []
        for message in replies:
            own = self._is_own(message, context)
            if float(message["ts"]) >= float(asked_ts) or (message.get("bot_id") and not own):
                continue
            text, role = message.get("text", ""), "assistant" if own else "user"
            if own and (asked := _ASKED.fullmatch(text)):
                text, role = asked["question"], "user"
            if content := from_slack(text, context.bot_user_id):
                turns.append({"role": role, "content": content})
        return turns[-HISTORY_MESSAGES:]

    def answer(self, client: WebClient, context: BoltContext, channel: str, question: str, *, thread_ts: str | None,
               asked_ts: str, read_thread: bool = False, replies: list[dict] | None = None) -> None:
        """Post a placeholder, stream the draft into it, then the final answer. A bug is logged
        with a request id and the user gets a short apology carrying that id."""
        request_id = new_request_id()
        placeholder = None
        try:
            if read_thread and replies is None:
                replies = self.thread_messages(client, channel, thread_ts)
            history = self.history(replies or [], asked_ts, context)
            placeholder = client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=THINKING,
                                                  blocks=[section(THINKING)])["ts"]
            payload = self.stream(client, channel, placeholder, question, history, request_id).to_json()
            self.state.save_answer(request_id, {"answer": payload, "history": history})
            first, *rest = answer_messages(payload, request_id)
            client.chat_update(channel=channel, ts=placeholder, text=notification_text(payload), blocks=first)
            for blocks in rest:
                client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=notification_text(payload),
                                        blocks=blocks)
        except UserError as exc:
            self.notify(client, channel, thread_ts, placeholder, f":warning: {escape(str(exc))}", request_id)
        except Exception:
            log.exception("request %s failed", request_id)
            self.notify(client, channel, thread_ts, placeholder, apology(request_id), request_id)

    def stream(self, client: WebClient, channel: str, ts: str, question: str,
               history: list[ChatMessage], request_id: str) -> Answer:
        """Run the pipeline, showing the draft with `chat.update` at most once per update interval."""
        draft, shown_at = "", time.monotonic()
        with self.answering:
            for event in self.pipeline.ask_stream(question, history, interface="slack", request_id=request_id):
                if isinstance(event, Completed):
                    return event.answer
                if isinstance(event, TextDelta):
                    draft = event.text if event.replace else draft + event.text
                    if time.monotonic() - shown_at >= self.settings.slack_update_interval:
                        client.chat_update(channel=channel, ts=ts, text=escape(draft[-NOTIFICATION_CHARS:]),
                                           blocks=draft_blocks(draft))
                        shown_at = time.monotonic()
        raise RuntimeError("answer stream ended without an answer")

    @staticmethod
    def notify(client: WebClient, channel: str, thread_ts: str | None, placeholder: str | None, mrkdwn: str,
               request_id: str) -> None:
        """Say something short in the answer's place (the placeholder, else a new reply)."""
        try:
            if placeholder:
                client.chat_update(channel=channel, ts=placeholder, text=mrkdwn, blocks=[section(mrkdwn)])
            else:
                client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=mrkdwn, blocks=[section(mrkdwn)])
        except Exception:
            log.exception("request %s: could not tell the user either", request_id)

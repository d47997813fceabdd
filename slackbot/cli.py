"""`rag slack`: the bot in Socket Mode (default: no public URL needed), or `--http` serving the
Events API, interactivity and `/ask` at `/slack/events` for replicas behind a load balancer."""

from __future__ import annotations

import re

import click

from rag.settings import Settings

EVENTS_PATH = "/slack/events"  # Bolt's default
# (variable, setting, what it is, its shape): checked before the slow start, named when wrong
CREDENTIALS = {
    "SLACK_BOT_TOKEN": ("slack_bot_token", "the bot token (xoxb-…)", re.compile(r"xoxb-[0-9A-Za-z-]+")),
    "SLACK_APP_TOKEN": ("slack_app_token", "the app-level token (xapp-…)", re.compile(r"xapp-[0-9A-Za-z-]+")),
    "SLACK_SIGNING_SECRET": ("slack_signing_secret", "the signing secret (hex)", re.compile(r"[0-9a-fA-F]{16,}")),
}


def check_credentials(settings: Settings, http: bool) -> None:
    """Stop start-up at a missing or malformed credential, naming its variable (never its value)."""
    needed = ["SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET" if http else "SLACK_APP_TOKEN"]
    for variable in needed:
        field, what, shape = CREDENTIALS[variable]
        secret = getattr(settings, field)
        value = secret.get_secret_value().strip() if secret else ""
        if not value:
            raise click.ClickException(f"{variable} is not set: `rag slack{' --http' if http else ''}` needs {what} "
                                       f"(or RAG_{variable}). See the README's Slack section.")
        if not shape.fullmatch(value):
            raise click.ClickException(f"{variable} is malformed: expected {what}, from your Slack app's settings.")


def http_app(bolt_app):
    """Bolt's dispatch behind Starlette (served by uvicorn), plus a health check for load balancers."""
    from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def events(request):
        body = await request.body()  # verified by Bolt: signature and 5-minute timestamp window
        response = await run_in_threadpool(bolt_app.dispatch, to_bolt_request(request, body))
        return to_starlette_response(response)

    async def health(request):
        return PlainTextResponse("ok")

    return Starlette(routes=[Route(EVENTS_PATH, events, methods=["POST"]), Route("/healthz", health)])


@click.command()
@click.option("--http", "http", is_flag=True, help=f"Serve the Events API over HTTP at {EVENTS_PATH} instead of Socket Mode.")
@click.option("--host", default="127.0.0.1", show_default=True, help="With --http: interface (0.0.0.0 for all).")
@click.option("--port", default=3000, show_default=True, type=click.IntRange(1, 65535), help="With --http: port.")
@click.option("--log-level", default=None, type=click.Choice(["debug", "info", "warning", "error"]),
              help="Default: RAG_LOG_LEVEL, else info. Tokens are redacted at every level.")
def slack(http: bool, host: str, port: int, log_level: str | None) -> None:
    """Answer questions in Slack: @mentions, direct messages, thread follow-ups and /ask."""
    from rag.cli import load_settings, ready_pipeline
    from rag.errors import UserError

    from rag.logs import configure_logging

    settings = load_settings(log_level=log_level)
    check_credentials(settings, http)
    configure_logging(settings, default_level="info")

    from slack_bolt.error import BoltError

    from .app import SlackBot

    try:
        pipe = ready_pipeline()
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        bot = SlackBot(pipe, settings, http)  # checks the bot token with auth.test
    except BoltError as exc:
        raise click.ClickException(f"Slack did not accept SLACK_BOT_TOKEN: {exc}") from None
    if http:
        import uvicorn

        click.echo(f"Slack bot listening on http://{host}:{port}{EVENTS_PATH} (Ctrl+C to stop)", err=True)
        uvicorn.run(http_app(bot.app), host=host, port=port, log_config=None, log_level=settings.log_level or "info")
    else:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        SocketModeHandler(bot.app, settings.slack_app_token.get_secret_value()).start()

"""`rag serve`: the browser chat, registered as a `rag.commands` plugin (see pyproject.toml).

Gradio is imported only when the command runs, so `rag --help` stays fast.
"""

from __future__ import annotations

import socket
import threading

import click


def port_is_free(host: str, port: int) -> bool:
    """Checked before building the index, so a busy port fails in a second, not after minutes."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a just-stopped server's TIME_WAIT is fine
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _busy(host: str, port: int) -> click.ClickException:
    return click.ClickException(
        f"Port {port} on {host} is already in use (another `rag serve`?). Pick another with --port."
    )


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on (0.0.0.0 for all).")
@click.option("--port", default=7860, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
def serve(host: str, port: int) -> None:
    """Chat with the interviews in a browser (indexes the bundled corpus on first run, with progress on the page)."""
    if not port_is_free(host, port):
        raise _busy(host, port)

    from rag.cli import pipeline
    from rag.errors import UserError

    try:
        pipe = pipeline()
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc

    from .indexing import Indexing

    indexing = Indexing()  # the page is up at once; a first run shows the indexing progress there

    def index_then_say_so() -> None:
        indexing.run(pipe)
        click.echo(f"Index ready ({len(pipe.index.chunks):,} passages)." if not indexing.error
                   else f"Index not usable: {indexing.error}", err=True)

    # Started before Gradio loads: on a first run the model conversion overlaps the page's start.
    threading.Thread(target=index_then_say_so, name="indexing", daemon=True).start()
    from .app import build_app, launch

    try:
        app = build_app(pipe, indexing)
        # quiet: Gradio's own banner suggests share links, and there is no internet here
        launch(app, pipe, host, port, quiet=True, prevent_thread_lock=True)
    except UserError as exc:  # e.g. a malformed RAG_WEB_AUTH
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:  # taken between our check and Gradio's bind
        if "port" in str(exc).lower():
            raise _busy(host, port) from exc
        raise click.ClickException(f"Could not start the server: {exc}") from exc
    click.echo(f"Chat running on http://{host}:{port} (Ctrl+C to stop)", err=True)
    app.block_thread()

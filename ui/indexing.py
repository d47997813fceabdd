"""First-run indexing in the background, with the progress the chat page shows.

Kept apart from the page (no gradio import) so `rag serve` starts indexing before Gradio loads.
"""

from __future__ import annotations

import logging
import threading

from rag.errors import UserError
from rag.pipeline import Pipeline

from .render import draft_markdown

log = logging.getLogger(__name__)


class Indexing:
    """The index built (or renewed) in the background after the server starts, so a first run
    shows a progress line instead of a page that does not load for minutes."""

    def __init__(self):
        self.done = self.total = 0
        self.finished = threading.Event()
        self.error: str | None = None

    def progress(self, done: int, total: int) -> None:
        self.done, self.total = done, total

    def run(self, pipeline: Pipeline) -> None:
        try:
            report = pipeline.ensure_ingested(show_progress=True, on_progress=self.progress)
            if report:
                log.info("%s", report.summary())
        except UserError as exc:
            self.error = str(exc)
        except Exception as exc:  # the log has the traceback; the page says it failed
            log.exception("indexing failed")
            self.error = f"indexing failed ({type(exc).__name__}); see the server log"
        finally:
            self.finished.set()

    def message(self) -> str:
        """What the page says until questions can be answered; "" once they can."""
        if self.error:
            return f"⚠️ The index is not usable: {draft_markdown(self.error)}"
        if self.finished.is_set():
            return ""
        if not self.total:
            return "_Preparing the index…_"
        return (f"⏳ Indexing the interviews for the first time: {self.done:,} of {self.total:,} passages embedded "
                f"({100 * self.done // self.total}%). Questions can be asked when it is done.")

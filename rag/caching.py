"""A `cached_property` that several threads may hit first at once (the web app shares one pipeline).

Python 3.12 dropped the lock `functools.cached_property` held in 3.11, so two requests arriving
together could both build the BM25 index or the vector matrix (seconds of CPU, twice) and one
could read a half-built view. This one builds each value once per instance.
"""

from __future__ import annotations

import threading
from functools import cached_property

_MISSING = object()


class shared_cached_property(cached_property):
    def __init__(self, func):
        super().__init__(func)
        self._lock = threading.RLock()

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        value = instance.__dict__.get(self.attrname, _MISSING)
        if value is not _MISSING:
            return value
        with self._lock:  # the first caller builds; the others wait, then read its value
            return super().__get__(instance, owner)

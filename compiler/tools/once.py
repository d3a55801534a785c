"""Each distinct log message once: ``snnc eval`` compiles many networks from one model, and a warning about
the model (weights keeping fewer bits, inputs outside the range) would otherwise repeat per setting."""

from __future__ import annotations

import contextlib
import logging


class OnceFilter(logging.Filter):
    """Lets each distinct log message through once (``snnc eval`` compiles many networks from one model:
    a warning about the model would otherwise repeat per setting)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[tuple[int, str]] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.levelno, record.getMessage())
        if key in self.seen:
            return False
        self.seen.add(key)
        return True


@contextlib.contextmanager
def warnings_once():
    """Within the block, every handler of the root logger prints each distinct message once."""
    f = OnceFilter()
    handlers = list(logging.getLogger().handlers)
    for h in handlers:
        h.addFilter(f)
    try:
        yield f
    finally:
        for h in handlers:
            h.removeFilter(f)

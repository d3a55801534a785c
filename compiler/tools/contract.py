"""The command layer's error contract (issue 14, docs/reliability.md): whatever goes wrong, ``snnc``
prints ONE line on stderr and ends with a documented exit status, never a traceback.

Exit status: 0 ok; 1 a check failed (``verify`` not exact); 2 a user error (``SnncError``,
``IRError``, ``BackendError``, a bad value, click's own usage errors: a bad option value, an unknown
option or command); 3 an internal error (any other exception: a bug); 130 interrupted (Ctrl-C).

A multi-problem error (``InvalidModelError``, ``UnsupportedOperatorError``, the lowering's list) is
shown as its first problem and ``and N more (-v lists them)`` on one line; ``-v`` prints every
problem, ``-vv`` also the traceback of an internal error.
"""

from __future__ import annotations

import logging
import sys
import traceback
from dataclasses import dataclass
from typing import Sequence

import click

from snnc.backends import BackendError
from snnc.ir import IRError

from ..errors import SnncError

log = logging.getLogger("snnc")

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 3
EXIT_INTERRUPTED = 130
USER_ERRORS = (SnncError, IRError, BackendError, ValueError)
EXIT_HELP = ("Exit status: 0 ok; 1 a check failed (verify: not exact); 2 a user error (one 'error: ...' line naming "
             "the file, option or node; -v lists every problem); 3 an internal error (a bug: -vv shows the "
             "traceback); 130 interrupted.")
BULLET = "- "


@dataclass(frozen=True)
class Problems:
    """A message split into its head line, its listed problems (``  - ...`` lines) and the lines after."""

    head: str
    items: tuple[str, ...]
    tail: tuple[str, ...]

    @classmethod
    def of(cls, message: str) -> "Problems":
        lines = [ln for ln in str(message).splitlines() if ln.strip()]
        if not lines:
            return cls("", (), ())
        head, items, tail = lines[0].strip(), [], []
        for ln in lines[1:]:
            s = ln.strip()
            if s.startswith(BULLET) and not tail:
                items.append(s[len(BULLET):].strip())
            elif items and not tail and ln[:1].isspace() and not s.startswith(BULLET):
                items[-1] += " " + s  # a wrapped problem
            else:
                tail.append(s)
        return cls(head, tuple(items), tuple(tail))

    def one_line(self) -> str:
        """The head, the first problem, how many more, and the closing lines, on one line."""
        text = self.head
        if self.items:
            text = (text.rstrip(":") + ": " if text else "") + self.items[0]
            if len(self.items) > 1:
                text += f" (and {len(self.items) - 1} more; -v lists them)"
        if self.tail:
            text += "; " + "; ".join(t.rstrip(".") for t in self.tail)
        return text


def message_of(exc: BaseException, verbose: int) -> str:
    """What the user sees after ``error: `` (one line unless ``verbose``)."""
    text = str(exc) or type(exc).__name__
    if verbose >= 1:
        return text
    return Problems.of(text).one_line()


def usage_message(exc: click.ClickException) -> str:
    """click's usage error as one line: the command and click's own explanation."""
    ctx = getattr(exc, "ctx", None)
    where = f"snnc {ctx.info_name}" if ctx is not None and ctx.parent is not None else "snnc"
    hint = f" (see '{ctx.command_path} --help')" if ctx is not None else " (see 'snnc --help')"
    return f"{where}: {exc.format_message()}{hint}"


def report(exc: BaseException, verbose: int = 0) -> int:
    """Print ``exc`` as the contract says and return the exit status."""
    if isinstance(exc, KeyboardInterrupt) or (isinstance(exc, click.exceptions.Abort)
                                              and isinstance(exc.__context__, KeyboardInterrupt)):
        click.echo("error: interrupted", err=True)
        return EXIT_INTERRUPTED
    if isinstance(exc, click.exceptions.Abort):
        click.echo("error: aborted", err=True)
        return EXIT_INTERRUPTED
    no_args = getattr(click.exceptions, "NoArgsIsHelpError", None)
    if no_args is not None and isinstance(exc, no_args):  # bare `snnc`: the help, as click shows it
        exc.show()
        return EXIT_USER_ERROR
    if isinstance(exc, click.ClickException):
        msg = usage_message(exc) if isinstance(exc, click.UsageError) else exc.format_message()
        click.echo(f"error: {' '.join(msg.split())}", err=True)
        return EXIT_USER_ERROR
    if isinstance(exc, USER_ERRORS):
        if verbose >= 2:
            log.debug("user error", exc_info=exc)
        click.echo(f"error: {message_of(exc, verbose)}", err=True)
        return EXIT_USER_ERROR
    if verbose >= 2:  # straight to stderr: logging may not be set up when the error happened
        click.echo("".join(traceback.format_exception(exc)).rstrip(), err=True)
    first = (str(exc).splitlines() or [""])[0]
    click.echo(f"internal error: {type(exc).__name__}: {first} (a bug in snnc; run with -vv for the traceback "
               "and please report it)", err=True)
    return EXIT_INTERNAL_ERROR


def verbosity(args: Sequence[str]) -> int:
    """The ``-v`` count given before the command (what the group's ``--verbose`` will parse)."""
    n = 0
    for a in args:
        if a == "--verbose":
            n += 1
        elif a.startswith("-") and not a.startswith("--") and set(a[1:]) == {"v"}:
            n += len(a) - 1
        elif not a.startswith("-"):
            break
    return n


def run(group: click.Group, args: Sequence[str] | None = None, prog_name: str = "snnc") -> int:
    """Run the command group under the contract; return the exit status (``main`` exits with it)."""
    argv = list(sys.argv[1:] if args is None else args)
    verbose = verbosity(argv)
    try:
        rc = group.main(argv, prog_name=prog_name, standalone_mode=False)
    except SystemExit as e:  # a command's own sys.exit(status)
        return e.code if isinstance(e.code, int) else (0 if e.code is None else EXIT_USER_ERROR)
    except BaseException as e:  # noqa: BLE001 - the contract's single handler
        return report(e, verbose)
    return rc if isinstance(rc, int) else EXIT_OK

"""User-facing errors: one line, naming the thing and what was expected, no traceback.

Every mistake a user can make (a bad override, a missing or corrupted file, a malformed
input line) raises :class:`UserError`. Entry scripts wrap their work in :func:`exit_on_user_error`
so the user sees ``error: <message>`` on stderr and a non-zero exit status, never a traceback.
Programming errors are not caught and keep their tracebacks.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")


class UserError(Exception):
    """An error caused by the user's input or environment, reported as one line."""


def choice_error(kind: str, value: object, choices: Iterable[object]) -> UserError:
    """Build the standard 'unknown X' error listing the allowed choices."""
    allowed = ", ".join(sorted(str(c) for c in choices))
    return UserError(f"unknown {kind} {value!r}; expected one of: {allowed}")


def exit_on_user_error(func: Callable[..., T]) -> Callable[..., T]:
    """Decorator for entry points: print a UserError as one line and exit with status 2."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except UserError as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)

    return wrapper

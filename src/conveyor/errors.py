"""Conveyor's error base class: the CLI prints these as one line and exits non-zero."""

from __future__ import annotations


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (a JVM error's message runs on for pages), or
    its type's name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class ConveyorError(Exception):
    """A problem a user can act on; the message names what, where and what to do next."""

    exit_code = 1

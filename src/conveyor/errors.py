"""Conveyor's error base class: the CLI prints these as one line and exits non-zero."""

from __future__ import annotations


class ConveyorError(Exception):
    """A problem a user can act on; the message names what, where and what to do next."""

    exit_code = 1

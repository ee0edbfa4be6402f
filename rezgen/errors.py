"""The one base of every error a user can cause: a bad file, query, dashboard, address or agent.

Its message is one line meant for the user; the command line prints it and exits non-zero, the server answers
it as a 4xx JSON error. Anything else that escapes is a bug in rezgen.
"""

from __future__ import annotations


class RezgenError(Exception):
    """An error caused by rezgen's input, not by rezgen; `str(error)` is one line for the user."""

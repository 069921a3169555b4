"""The project's own error type.

Every problem with the user's input (a missing file, a malformed label file, a bad
argument) is raised as ``ActrecogError`` with a message that names the file or the
argument and what is wrong. The entry scripts turn it into one line on stderr and
exit code 2; anything else is a bug and keeps its traceback.
"""


class ActrecogError(Exception):
    """A user-facing problem, reported as one line and exit code 2."""

"""The one error type the CLI turns into a one-line message and a non-zero exit."""


class ProjectError(Exception):
    """A problem the user can fix: bad config, missing files, failed checks.

    The message names the problem and the file; the CLI prints it without a traceback.
    """

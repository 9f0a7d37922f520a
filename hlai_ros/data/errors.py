"""Errors of the data path."""


class BagError(ValueError):
    """A bag cannot be used: not MCAP, foreign message types, missing topics, bad contents.

    The message always names the file or bag directory and the problem.
    """


class TruncatedBagWarning(UserWarning):
    """A bag was cut short (crash, kill, full disk); what was whole before the cut was loaded."""

def title_case(s: str) -> str:
    """Capitalise the first letter of every space-separated word and lower-case the rest; keep the spacing.

    Only spaces separate words, so an apostrophe does not start a new word.

    >>> title_case("hELLO there")
    'Hello There'
    >>> title_case(" two  spaces ")
    ' Two  Spaces '
    >>> title_case("don't STOP")
    "Don't Stop"

    """

def parse_duration(text: str) -> int:
    """Seconds in a duration like "1h30m", "45s" or "2h5s" (units h, m, s, each at most once, in that order).

    Raise ValueError for anything else: an empty string, a number without a unit, an unknown unit,
    units out of order or repeated.

    >>> parse_duration("2m30s")
    150
    >>> parse_duration("1h")
    3600
    >>> parse_duration("30s2m")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ValueError: units out of order
    >>> parse_duration("12")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ValueError: no unit

    """

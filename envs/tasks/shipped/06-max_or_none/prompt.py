def max_or_none(xs: list[float]) -> float | None:
    """The largest element of xs, or None when xs is empty.

    >>> max_or_none([2.5, 7, 1])
    7
    >>> max_or_none([-3, -8])
    -3
    >>> print(max_or_none([]))
    None

    """

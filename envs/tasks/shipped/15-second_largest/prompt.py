def second_largest(xs: list[int]) -> int | None:
    """The second largest distinct value in xs, or None when there is none.

    >>> second_largest([10, 30, 20])
    20
    >>> second_largest([8, 8, 6])
    6
    >>> print(second_largest([4, 4]))
    None

    """

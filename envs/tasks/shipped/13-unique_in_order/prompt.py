def unique_in_order(xs: list) -> list:
    """The distinct elements of xs, each at its first position.

    >>> unique_in_order([2, 2, 1, 2, 3])
    [2, 1, 3]
    >>> unique_in_order(list("hello"))
    ['h', 'e', 'l', 'o']

    """

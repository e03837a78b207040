def top_k_frequent(xs: list[int], k: int) -> list[int]:
    """The k most frequent values, most frequent first; ties broken by the smaller value.

    When xs has fewer than k distinct values, all of them are returned.

    >>> top_k_frequent([3, 3, 1, 1, 1, 2], 2)
    [1, 3]
    >>> top_k_frequent([7, 5, 7, 5, 6], 2)
    [5, 7]
    >>> top_k_frequent([8, 8], 5)
    [8]

    """

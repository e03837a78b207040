def spiral_order(m: list[list[int]]) -> list[int]:
    """The elements of the matrix in clockwise spiral order, starting top-left ([] for no rows).

    >>> spiral_order([[1, 2], [3, 4]])
    [1, 2, 4, 3]
    >>> spiral_order([[1], [2], [3]])
    [1, 2, 3]
    >>> spiral_order([[1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12]])
    [1, 2, 3, 6, 9, 12, 11, 10, 7, 4, 5, 8]

    """

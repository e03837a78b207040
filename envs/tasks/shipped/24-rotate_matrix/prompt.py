def rotate_matrix(m: list[list[int]]) -> list[list[int]]:
    """The matrix rotated 90 degrees clockwise (a new list of lists; m is not changed).

    The matrix may be rectangular: r rows of c columns become c rows of r columns.

    >>> rotate_matrix([[1, 2, 3], [4, 5, 6]])
    [[4, 1], [5, 2], [6, 3]]
    >>> grid = [[5, 6], [7, 8]]
    >>> rotate_matrix(grid)
    [[7, 5], [8, 6]]
    >>> grid
    [[5, 6], [7, 8]]

    """

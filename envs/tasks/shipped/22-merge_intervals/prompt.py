def merge_intervals(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merge overlapping (or touching) closed intervals; the result is a sorted list of tuples.

    Touching means sharing an end point: (1, 2) and (2, 3) merge, (1, 2) and (3, 4) do not.

    >>> merge_intervals([(4, 6), (2, 3), (1, 2)])
    [(1, 3), (4, 6)]
    >>> merge_intervals([(1, 10), (2, 3)])
    [(1, 10)]

    """

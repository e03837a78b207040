def binary_search(xs: list[int], target: int) -> int:
    """Index of target in the sorted list xs (ascending, no repeats), or -1 when absent. Must be O(log n).

    >>> binary_search([1, 4, 9, 16], 9)
    2
    >>> binary_search([1, 4, 9, 16], 1)
    0
    >>> binary_search([1, 4, 9, 16], 5)
    -1

    """

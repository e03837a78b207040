def flatten(items: list) -> list:
    """Flatten arbitrarily nested lists, keeping the order; only lists are opened (strings stay whole).

    >>> flatten([1, [2, [3]]])
    [1, 2, 3]
    >>> flatten([[[]], [5, []]])
    [5]
    >>> flatten(["hi", ["there"]])
    ['hi', 'there']

    """

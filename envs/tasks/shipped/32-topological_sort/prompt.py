def topological_sort(graph: dict[str, list[str]]) -> list[str]:
    """Order the nodes so each comes before the nodes it points to; among ready nodes pick the
    alphabetically smallest. Nodes may appear only as targets. Raise ValueError on a cycle.

    A node is ready when every node that points to it is already placed.

    >>> topological_sort({"shoes": [], "socks": ["shoes"], "pants": ["shoes", "belt"]})
    ['pants', 'belt', 'socks', 'shoes']
    >>> topological_sort({"a": ["b"], "b": ["c"], "c": ["a"]})  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ValueError: cycle

    """

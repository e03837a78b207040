def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance: fewest single-character insertions, deletions or substitutions from a to b.

    >>> edit_distance("horse", "ros")
    3
    >>> edit_distance("abc", "")
    3
    >>> edit_distance("ab", "ba")
    2

    """

def longest_common_prefix(words: list[str]) -> str:
    """The longest string that starts every word ("" for no words).

    >>> longest_common_prefix(["interview", "internet", "interval"])
    'inter'
    >>> longest_common_prefix(["apple", "app"])
    'app'
    >>> longest_common_prefix(["x", "y"])
    ''

    """

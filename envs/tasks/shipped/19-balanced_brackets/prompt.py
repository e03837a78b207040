def balanced_brackets(s: str) -> bool:
    """True when every (, [ and { in s is closed in the right order; other characters are ignored.

    >>> balanced_brackets("f(a[1]) {}")
    True
    >>> balanced_brackets("([)]")
    False
    >>> balanced_brackets("(()")
    False
    >>> balanced_brackets("}{")
    False

    """

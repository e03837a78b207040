def lcs_length(a: str, b: str) -> int:
    """Length of the longest common subsequence of a and b (not necessarily contiguous).

    Must be fast for strings of a few hundred characters.

    >>> lcs_length("ABCBDAB", "BDCABA")
    4
    >>> lcs_length("", "xyz")
    0
    >>> lcs_length("ab" * 50, "b" * 60)
    50

    """

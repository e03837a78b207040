def is_palindrome(s: str) -> bool:
    """True when s reads the same both ways, ignoring case and anything that is not a letter or digit.

    A string with no letters or digits at all counts as a palindrome.

    >>> is_palindrome("No 'x' in Nixon")
    True
    >>> is_palindrome("abca")
    False
    >>> is_palindrome("?!")
    True

    """

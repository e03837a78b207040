def count_vowels(s: str) -> int:
    """Number of vowels (a, e, i, o, u, either case) in s; y is not a vowel.

    >>> count_vowels("OpenAI")
    4
    >>> count_vowels("Programming")
    3
    >>> count_vowels("sky")
    0

    """

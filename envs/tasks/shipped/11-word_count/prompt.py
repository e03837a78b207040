def word_count(text: str) -> dict[str, int]:
    """Count words, case-insensitively; words are runs of letters, digits or apostrophes.

    The keys are the words in lower case; anything else (spaces, punctuation) separates words.

    >>> sorted(word_count("It's 9 o'clock, IT'S late!").items())
    [('9', 1), ("it's", 2), ('late', 1), ("o'clock", 1)]
    >>> word_count("Go, go... GO")
    {'go': 3}
    >>> word_count("?! -")
    {}

    """

def group_anagrams(words: list[str]) -> list[list[str]]:
    """Group words that are anagrams of each other; each group sorted, groups sorted by their first word.

    >>> group_anagrams(["listen", "google", "silent", "enlist"])
    [['enlist', 'listen', 'silent'], ['google']]
    >>> group_anagrams(["b", "ba", "a", "ab"])
    [['a'], ['ab', 'ba'], ['b']]

    """

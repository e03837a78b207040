def run_length_encode(s: str) -> str:
    """Run-length encoding: each run of one repeated character becomes its length, then the character.

    >>> run_length_encode("wwwwb")
    '4w1b'
    >>> run_length_encode("abca")
    '1a1b1c1a'
    >>> run_length_encode("z" * 11)
    '11z'

    """

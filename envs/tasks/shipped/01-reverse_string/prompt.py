def reverse_string(s: str) -> str:
    """Return s reversed.

    >>> reverse_string("stressed")
    'desserts'
    >>> reverse_string("ab c")
    'c ba'

    """

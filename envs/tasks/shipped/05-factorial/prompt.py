def factorial(n: int) -> int:
    """n! for n >= 0; raise ValueError for negative n.

    >>> factorial(0)
    1
    >>> factorial(7)
    5040
    >>> factorial(-3)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ValueError: n must not be negative

    """

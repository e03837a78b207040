def gcd(a: int, b: int) -> int:
    """Greatest common divisor of a and b (non-negative result; gcd(0, 0) == 0).

    >>> gcd(48, 36)
    12
    >>> gcd(-6, 4)
    2
    >>> gcd(0, 5)
    5

    """

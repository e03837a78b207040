def is_prime(n: int) -> bool:
    """True when n is a prime number. Numbers below 2 (0, 1 and every negative number) are not prime.

    >>> is_prime(2)
    True
    >>> is_prime(1)
    False
    >>> is_prime(91)
    False
    >>> is_prime(97)
    True

    """

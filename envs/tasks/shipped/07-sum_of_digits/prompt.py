def sum_of_digits(n: int) -> int:
    """Sum of the decimal digits of n (the sign is ignored).

    >>> sum_of_digits(505)
    10
    >>> sum_of_digits(-38)
    11
    >>> sum_of_digits(7)
    7

    """

def int_to_roman(n: int) -> str:
    """The Roman numeral of 1 <= n <= 3999, written with the subtractive forms (IV, IX, XL, XC, CD, CM).

    >>> int_to_roman(4)
    'IV'
    >>> int_to_roman(444)
    'CDXLIV'
    >>> int_to_roman(2024)
    'MMXXIV'

    """

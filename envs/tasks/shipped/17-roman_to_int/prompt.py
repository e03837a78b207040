def roman_to_int(s: str) -> int:
    """The value of a Roman numeral such as "MCMXCIV".

    >>> roman_to_int("XIV")
    14
    >>> roman_to_int("CDXLIV")
    444
    >>> roman_to_int("MMXXIV")
    2024

    """

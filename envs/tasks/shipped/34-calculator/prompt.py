def calculate(expr: str) -> float:
    """Evaluate an arithmetic expression with + - * /, parentheses, unary minus and spaces,
    without eval(). The result is a float; operators of the same precedence go left to right.
    Raise ValueError for malformed input, including any other operator (such as **) or character.

    >>> calculate("2 + 3 * 4")
    14.0
    >>> calculate("-(2 - 5) / 2")
    1.5
    >>> calculate("10 - 4 - 3")
    3.0
    >>> calculate("4 ** 2")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ValueError: unexpected operator

    """

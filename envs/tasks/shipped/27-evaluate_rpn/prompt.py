def evaluate_rpn(tokens: list[str]) -> int:
    """Evaluate reverse Polish notation with + - * and / (division truncates toward zero).

    Operands are integers, possibly negative such as "-7".

    >>> evaluate_rpn(["3", "4", "+", "2", "*"])
    14
    >>> evaluate_rpn(["10", "3", "-"])
    7
    >>> evaluate_rpn(["7", "-2", "/"])
    -3

    """

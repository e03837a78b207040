def celsius_to_fahrenheit(c: float) -> float:
    """Convert degrees Celsius to Fahrenheit (F = C * 9 / 5 + 32), as a float.

    >>> celsius_to_fahrenheit(25)
    77.0
    >>> celsius_to_fahrenheit(-10)
    14.0

    """

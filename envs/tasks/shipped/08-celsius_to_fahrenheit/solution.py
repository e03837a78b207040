def celsius_to_fahrenheit(c: float) -> float:
    return c * 9 / 5 + 32

def fibonacci(n: int) -> int:
    """The n-th Fibonacci number: fibonacci(0) == 0, fibonacci(1) == 1. Must be fast for n = 200.

    >>> fibonacci(1)
    1
    >>> fibonacci(10)
    55
    >>> fibonacci(100)
    354224848179261915075

    """

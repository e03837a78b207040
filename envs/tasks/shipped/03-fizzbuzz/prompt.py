def fizzbuzz(n: int) -> list[str]:
    """Strings for 1..n: "Fizz" for multiples of 3, "Buzz" of 5, "FizzBuzz" of both, else the number.

    The list is empty when n is 0.

    >>> fizzbuzz(3)
    ['1', '2', 'Fizz']
    >>> fizzbuzz(15)[9:]
    ['Buzz', '11', 'Fizz', '13', '14', 'FizzBuzz']

    """

def sum_of_digits(n: int) -> int:
    return sum(int(c) for c in str(abs(n)))

def reverse_string(s: str) -> str:
    return s[::-1]

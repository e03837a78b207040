import re

def calculate(expr: str) -> float:
    tokens = re.findall(r"\d+\.?\d*|[-+*/()]|\S", expr)
    pos = 0

    def peek():
        return tokens[pos] if pos < len(tokens) else None

    def take():
        nonlocal pos
        if pos >= len(tokens):
            raise ValueError("unexpected end")
        pos += 1
        return tokens[pos - 1]

    def atom():
        t = take()
        if t == "-":
            return -atom()
        if t == "(":
            v = add()
            if take() != ")":
                raise ValueError("expected )")
            return v
        try:
            return float(t)
        except ValueError:
            raise ValueError(f"bad token {t!r}") from None

    def mul():
        v = atom()
        while peek() in ("*", "/"):
            op = take()
            if peek() in ("*", "/"):
                raise ValueError("double operator")
            r = atom()
            v = v * r if op == "*" else v / r
        return v

    def add():
        v = mul()
        while peek() in ("+", "-"):
            op = take()
            r = mul()
            v = v + r if op == "+" else v - r
        return v

    result = add()
    if pos != len(tokens):
        raise ValueError("trailing input")
    return result

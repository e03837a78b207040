def second_largest(xs: list[int]) -> int | None:
    values = sorted(set(xs))
    return values[-2] if len(values) >= 2 else None

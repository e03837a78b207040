def max_or_none(xs: list[float]) -> float | None:
    return max(xs) if xs else None

def spiral_order(m: list[list[int]]) -> list[int]:
    out = []
    m = [row[:] for row in m]
    while m:
        out.extend(m.pop(0))
        m = [list(r) for r in zip(*m)][::-1]
    return out

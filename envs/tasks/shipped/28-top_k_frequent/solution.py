from collections import Counter

def top_k_frequent(xs: list[int], k: int) -> list[int]:
    counts = Counter(xs)
    return [v for v, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:k]]

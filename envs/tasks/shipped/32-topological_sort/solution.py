import heapq

def topological_sort(graph: dict[str, list[str]]) -> list[str]:
    nodes = set(graph) | {t for ts in graph.values() for t in ts}
    indegree = {n: 0 for n in nodes}
    for ts in graph.values():
        for t in ts:
            indegree[t] += 1
    ready = [n for n, d in indegree.items() if d == 0]
    heapq.heapify(ready)
    out = []
    while ready:
        n = heapq.heappop(ready)
        out.append(n)
        for t in graph.get(n, []):
            indegree[t] -= 1
            if indegree[t] == 0:
                heapq.heappush(ready, t)
    if len(out) != len(nodes):
        raise ValueError("cycle")
    return out

class LRUCache:
    """A cache of at most `capacity` items; get(key) returns the value or -1; put evicts the least
    recently used key (a get counts as a use). A put of a key already held replaces its value.

    >>> cache = LRUCache(2)
    >>> cache.put(1, 10)
    >>> cache.put(2, 20)
    >>> cache.get(1)  # 1 is now used more recently than 2
    10
    >>> cache.put(3, 30)  # the cache is full: 2 goes
    >>> cache.get(2)
    -1
    >>> cache.put(1, 11)
    >>> cache.get(1), cache.get(3)
    (11, 30)

    """

    def __init__(self, capacity: int):
        pass

    def get(self, key: int) -> int:
        pass

    def put(self, key: int, value: int) -> None:
        pass

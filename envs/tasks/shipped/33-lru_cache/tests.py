from solution import LRUCache

def test_eviction():
    c = LRUCache(2)
    c.put(1, 1)
    c.put(2, 2)
    assert c.get(1) == 1
    c.put(3, 3)
    assert c.get(2) == -1
    assert c.get(3) == 3

def test_update():
    c = LRUCache(1)
    c.put(1, 1)
    c.put(1, 5)
    assert c.get(1) == 5

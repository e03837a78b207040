from solution import binary_search

def test_found():
    xs = list(range(0, 100, 3))
    assert all(binary_search(xs, x) == i for i, x in enumerate(xs))

def test_missing():
    assert binary_search([1, 3, 5], 4) == -1
    assert binary_search([], 1) == -1

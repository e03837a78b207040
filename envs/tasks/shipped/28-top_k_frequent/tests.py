from solution import top_k_frequent

def test_basic():
    assert top_k_frequent([1, 1, 1, 2, 2, 3], 2) == [1, 2]

def test_ties():
    assert top_k_frequent([4, 4, 2, 2, 9], 2) == [2, 4]

def test_k_larger():
    assert top_k_frequent([5], 3) == [5]

from solution import unique_in_order

def test_basic():
    assert unique_in_order([3, 1, 3, 2, 1]) == [3, 1, 2]

def test_strings():
    assert unique_in_order(list("banana")) == ["b", "a", "n"]

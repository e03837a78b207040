from solution import max_or_none

def test_values():
    assert max_or_none([3, 9, -2]) == 9

def test_negative():
    assert max_or_none([-5, -1, -7]) == -1

def test_empty():
    assert max_or_none([]) is None

from solution import merge_intervals

def test_overlap():
    assert merge_intervals([(1, 3), (2, 6), (8, 10), (15, 18)]) == [(1, 6), (8, 10), (15, 18)]

def test_touching_and_unsorted():
    assert merge_intervals([(5, 7), (1, 5)]) == [(1, 7)]

def test_empty():
    assert merge_intervals([]) == []

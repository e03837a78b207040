from solution import rotate_matrix

def test_square():
    assert rotate_matrix([[1, 2], [3, 4]]) == [[3, 1], [4, 2]]

def test_rectangle():
    assert rotate_matrix([[1, 2, 3]]) == [[1], [2], [3]]

def test_unchanged_input():
    m = [[1, 2], [3, 4]]
    rotate_matrix(m)
    assert m == [[1, 2], [3, 4]]

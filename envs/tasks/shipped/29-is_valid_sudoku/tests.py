from solution import is_valid_sudoku

EMPTY = [[0] * 9 for _ in range(9)]

def test_empty():
    assert is_valid_sudoku(EMPTY)

def test_row_repeat():
    b = [row[:] for row in EMPTY]
    b[0][0] = b[0][8] = 5
    assert not is_valid_sudoku(b)

def test_box_repeat():
    b = [row[:] for row in EMPTY]
    b[0][0] = b[2][2] = 7
    assert not is_valid_sudoku(b)

def test_column_repeat():
    b = [row[:] for row in EMPTY]
    b[1][4] = b[7][4] = 3
    assert not is_valid_sudoku(b)

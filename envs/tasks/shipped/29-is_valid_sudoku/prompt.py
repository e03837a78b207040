def is_valid_sudoku(board: list[list[int]]) -> bool:
    """True when no row, column or 3x3 box of the 9x9 board repeats a digit 1-9; 0 means empty.

    >>> board = [[0] * 9 for _ in range(9)]
    >>> board[0][0] = board[4][4] = board[8][8] = 5
    >>> is_valid_sudoku(board)
    True
    >>> board[1][2] = board[2][1] = 4  # the same 3x3 box
    >>> is_valid_sudoku(board)
    False

    """

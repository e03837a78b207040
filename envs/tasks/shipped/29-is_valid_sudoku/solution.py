def is_valid_sudoku(board: list[list[int]]) -> bool:
    seen = set()
    for r in range(9):
        for c in range(9):
            v = board[r][c]
            if not v:
                continue
            keys = {("r", r, v), ("c", c, v), ("b", r // 3, c // 3, v)}
            if keys & seen:
                return False
            seen |= keys
    return True

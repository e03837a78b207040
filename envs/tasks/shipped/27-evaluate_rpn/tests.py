from solution import evaluate_rpn

def test_basic():
    assert evaluate_rpn(["2", "1", "+", "3", "*"]) == 9

def test_division_truncates():
    assert evaluate_rpn(["4", "13", "5", "/", "+"]) == 6
    assert evaluate_rpn(["-7", "2", "/"]) == -3

import pytest
from solution import calculate

def test_precedence():
    assert calculate("1 + 2 * 3") == 7
    assert calculate("(1 + 2) * 3") == 9

def test_unary_and_division():
    assert calculate("-4 / (2 - 4)") == 2
    assert calculate("2 * -3") == -6

def test_malformed():
    for bad in ["1 +", "(1", "2 ** 3", "abc"]:
        with pytest.raises(ValueError):
            calculate(bad)

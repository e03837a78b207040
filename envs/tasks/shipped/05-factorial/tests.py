import pytest
from solution import factorial

def test_values():
    assert [factorial(i) for i in range(6)] == [1, 1, 2, 6, 24, 120]

def test_negative():
    with pytest.raises(ValueError):
        factorial(-1)

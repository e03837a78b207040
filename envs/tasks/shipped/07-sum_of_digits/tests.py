from solution import sum_of_digits

def test_positive():
    assert sum_of_digits(1234) == 10

def test_negative():
    assert sum_of_digits(-907) == 16

def test_zero():
    assert sum_of_digits(0) == 0

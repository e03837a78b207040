from solution import gcd

def test_values():
    assert gcd(12, 18) == 6
    assert gcd(17, 5) == 1

def test_zero_and_sign():
    assert gcd(0, 9) == 9
    assert gcd(-12, 8) == 4
    assert gcd(0, 0) == 0

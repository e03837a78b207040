from solution import is_prime

def test_small():
    assert [n for n in range(20) if is_prime(n)] == [2, 3, 5, 7, 11, 13, 17, 19]

def test_large():
    assert is_prime(7919) and not is_prime(7917)

def test_negative():
    assert not is_prime(-7)

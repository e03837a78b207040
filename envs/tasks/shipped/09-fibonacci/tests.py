from solution import fibonacci

def test_small():
    assert [fibonacci(i) for i in range(8)] == [0, 1, 1, 2, 3, 5, 8, 13]

def test_large():
    assert fibonacci(200) == 280571172992510140037611932413038677189525

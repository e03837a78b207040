from solution import fizzbuzz

def test_fifteen():
    out = fizzbuzz(15)
    assert out[:5] == ["1", "2", "Fizz", "4", "Buzz"]
    assert out[14] == "FizzBuzz"

def test_zero():
    assert fizzbuzz(0) == []

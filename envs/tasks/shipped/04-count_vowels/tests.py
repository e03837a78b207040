from solution import count_vowels

def test_lower():
    assert count_vowels("hello world") == 3

def test_upper():
    assert count_vowels("AEIOU xyz") == 5

def test_none():
    assert count_vowels("rhythm") == 0

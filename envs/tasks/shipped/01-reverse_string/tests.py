from solution import reverse_string

def test_basic():
    assert reverse_string("abc") == "cba"

def test_empty():
    assert reverse_string("") == ""

def test_unicode():
    assert reverse_string("héllo") == "olléh"

from solution import run_length_encode

def test_basic():
    assert run_length_encode("aaabcc") == "3a1b2c"

def test_long_run():
    assert run_length_encode("x" * 12) == "12x"

def test_empty():
    assert run_length_encode("") == ""

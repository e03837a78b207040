from solution import title_case

def test_basic():
    assert title_case("hello wORLD") == "Hello World"

def test_spacing():
    assert title_case("  a  b ") == "  A  B "

from solution import balanced_brackets

def test_balanced():
    assert balanced_brackets("([]{})")
    assert balanced_brackets("a(b)c")

def test_unbalanced():
    assert not balanced_brackets("(]")
    assert not balanced_brackets("((")
    assert not balanced_brackets(")(")

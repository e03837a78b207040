from solution import lcs_length

def test_values():
    assert lcs_length("abcde", "ace") == 3
    assert lcs_length("abc", "def") == 0
    assert lcs_length("AGGTAB", "GXTXAYB") == 4

def test_long():
    assert lcs_length("a" * 300, "a" * 200) == 200

from solution import longest_common_prefix

def test_basic():
    assert longest_common_prefix(["flower", "flow", "flight"]) == "fl"

def test_none():
    assert longest_common_prefix(["dog", "car"]) == ""
    assert longest_common_prefix([]) == ""

def test_whole():
    assert longest_common_prefix(["same", "same"]) == "same"

from solution import int_to_roman

def test_values():
    assert int_to_roman(3) == "III"
    assert int_to_roman(9) == "IX"
    assert int_to_roman(1994) == "MCMXCIV"
    assert int_to_roman(3999) == "MMMCMXCIX"

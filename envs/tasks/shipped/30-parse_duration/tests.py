import pytest
from solution import parse_duration

def test_values():
    assert parse_duration("1h30m") == 5400
    assert parse_duration("45s") == 45
    assert parse_duration("2h5s") == 7205

def test_invalid():
    for bad in ["", "5", "1x", "30m1h", "1h1h"]:
        with pytest.raises(ValueError):
            parse_duration(bad)

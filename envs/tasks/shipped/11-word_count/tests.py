from solution import word_count

def test_basic():
    assert word_count("the cat and The hat") == {"the": 2, "cat": 1, "and": 1, "hat": 1}

def test_punctuation():
    assert word_count("Hi! hi, don't stop.") == {"hi": 2, "don't": 1, "stop": 1}

def test_empty():
    assert word_count("") == {}

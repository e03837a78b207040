import pytest
from solution import topological_sort

def test_order():
    assert topological_sort({"b": ["c"], "a": ["c"], "c": ["d"]}) == ["a", "b", "c", "d"]

def test_cycle():
    with pytest.raises(ValueError):
        topological_sort({"a": ["b"], "b": ["a"]})

def test_empty():
    assert topological_sort({}) == []

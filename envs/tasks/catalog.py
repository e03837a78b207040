"""Function-level code tasks written for trellis, in five levels of difficulty.

Each task: a prompt (signature and docstring, the file the agent starts from), hidden pytest tests,
and a reference solution used to check the task itself.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class CodeTask(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    level: int
    """1 (easy) to 5 (hard)."""
    entry_point: str
    prompt: str
    tests: str
    solution: str


def _t(id: str, level: int, entry: str, prompt: str, tests: str, solution: str) -> CodeTask:
    return CodeTask(
        id=id,
        level=level,
        entry_point=entry,
        prompt=prompt.strip() + "\n",
        tests=tests.strip() + "\n",
        solution=solution.strip() + "\n",
    )


TASKS: list[CodeTask] = [
    _t(
        "reverse_string",
        1,
        "reverse_string",
        '''
def reverse_string(s: str) -> str:
    """Return s reversed."""
''',
        """
from solution import reverse_string

def test_basic():
    assert reverse_string("abc") == "cba"

def test_empty():
    assert reverse_string("") == ""

def test_unicode():
    assert reverse_string("héllo") == "olléh"
""",
        """
def reverse_string(s: str) -> str:
    return s[::-1]
""",
    ),
    _t(
        "is_palindrome",
        1,
        "is_palindrome",
        '''
def is_palindrome(s: str) -> bool:
    """True when s reads the same both ways, ignoring case and anything that is not a letter or digit."""
''',
        """
from solution import is_palindrome

def test_simple():
    assert is_palindrome("racecar")

def test_phrase():
    assert is_palindrome("A man, a plan, a canal: Panama")

def test_not():
    assert not is_palindrome("hello")

def test_empty():
    assert is_palindrome("")
""",
        """
def is_palindrome(s: str) -> bool:
    t = [c.lower() for c in s if c.isalnum()]
    return t == t[::-1]
""",
    ),
    _t(
        "fizzbuzz",
        1,
        "fizzbuzz",
        '''
def fizzbuzz(n: int) -> list[str]:
    """Strings for 1..n: "Fizz" for multiples of 3, "Buzz" of 5, "FizzBuzz" of both, else the number."""
''',
        """
from solution import fizzbuzz

def test_fifteen():
    out = fizzbuzz(15)
    assert out[:5] == ["1", "2", "Fizz", "4", "Buzz"]
    assert out[14] == "FizzBuzz"

def test_zero():
    assert fizzbuzz(0) == []
""",
        """
def fizzbuzz(n: int) -> list[str]:
    out = []
    for i in range(1, n + 1):
        out.append("FizzBuzz" if i % 15 == 0 else "Fizz" if i % 3 == 0 else "Buzz" if i % 5 == 0 else str(i))
    return out
""",
    ),
    _t(
        "count_vowels",
        1,
        "count_vowels",
        '''
def count_vowels(s: str) -> int:
    """Number of vowels (a, e, i, o, u, either case) in s."""
''',
        """
from solution import count_vowels

def test_lower():
    assert count_vowels("hello world") == 3

def test_upper():
    assert count_vowels("AEIOU xyz") == 5

def test_none():
    assert count_vowels("rhythm") == 0
""",
        """
def count_vowels(s: str) -> int:
    return sum(1 for c in s.lower() if c in "aeiou")
""",
    ),
    _t(
        "factorial",
        1,
        "factorial",
        '''
def factorial(n: int) -> int:
    """n! for n >= 0; raise ValueError for negative n."""
''',
        """
import pytest
from solution import factorial

def test_values():
    assert [factorial(i) for i in range(6)] == [1, 1, 2, 6, 24, 120]

def test_negative():
    with pytest.raises(ValueError):
        factorial(-1)
""",
        """
def factorial(n: int) -> int:
    if n < 0:
        raise ValueError("negative")
    out = 1
    for i in range(2, n + 1):
        out *= i
    return out
""",
    ),
    _t(
        "max_or_none",
        1,
        "max_or_none",
        '''
def max_or_none(xs: list[float]) -> float | None:
    """The largest element of xs, or None when xs is empty."""
''',
        """
from solution import max_or_none

def test_values():
    assert max_or_none([3, 9, -2]) == 9

def test_negative():
    assert max_or_none([-5, -1, -7]) == -1

def test_empty():
    assert max_or_none([]) is None
""",
        """
def max_or_none(xs: list[float]) -> float | None:
    return max(xs) if xs else None
""",
    ),
    _t(
        "sum_of_digits",
        1,
        "sum_of_digits",
        '''
def sum_of_digits(n: int) -> int:
    """Sum of the decimal digits of n (the sign is ignored)."""
''',
        """
from solution import sum_of_digits

def test_positive():
    assert sum_of_digits(1234) == 10

def test_negative():
    assert sum_of_digits(-907) == 16

def test_zero():
    assert sum_of_digits(0) == 0
""",
        """
def sum_of_digits(n: int) -> int:
    return sum(int(c) for c in str(abs(n)))
""",
    ),
    _t(
        "celsius_to_fahrenheit",
        1,
        "celsius_to_fahrenheit",
        '''
def celsius_to_fahrenheit(c: float) -> float:
    """Convert degrees Celsius to Fahrenheit."""
''',
        """
from solution import celsius_to_fahrenheit

def test_points():
    assert celsius_to_fahrenheit(0) == 32
    assert celsius_to_fahrenheit(100) == 212
    assert abs(celsius_to_fahrenheit(-40) + 40) < 1e-9
""",
        """
def celsius_to_fahrenheit(c: float) -> float:
    return c * 9 / 5 + 32
""",
    ),
    _t(
        "fibonacci",
        2,
        "fibonacci",
        '''
def fibonacci(n: int) -> int:
    """The n-th Fibonacci number: fibonacci(0) == 0, fibonacci(1) == 1. Must be fast for n = 200."""
''',
        """
from solution import fibonacci

def test_small():
    assert [fibonacci(i) for i in range(8)] == [0, 1, 1, 2, 3, 5, 8, 13]

def test_large():
    assert fibonacci(200) == 280571172992510140037611932413038677189525
""",
        """
def fibonacci(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a
""",
    ),
    _t(
        "is_prime",
        2,
        "is_prime",
        '''
def is_prime(n: int) -> bool:
    """True when n is a prime number."""
''',
        """
from solution import is_prime

def test_small():
    assert [n for n in range(20) if is_prime(n)] == [2, 3, 5, 7, 11, 13, 17, 19]

def test_large():
    assert is_prime(7919) and not is_prime(7917)

def test_negative():
    assert not is_prime(-7)
""",
        """
def is_prime(n: int) -> bool:
    if n < 2:
        return False
    i = 2
    while i * i <= n:
        if n % i == 0:
            return False
        i += 1
    return True
""",
    ),
    _t(
        "word_count",
        2,
        "word_count",
        '''
def word_count(text: str) -> dict[str, int]:
    """Count words, case-insensitively; words are runs of letters, digits or apostrophes."""
''',
        """
from solution import word_count

def test_basic():
    assert word_count("the cat and The hat") == {"the": 2, "cat": 1, "and": 1, "hat": 1}

def test_punctuation():
    assert word_count("Hi! hi, don't stop.") == {"hi": 2, "don't": 1, "stop": 1}

def test_empty():
    assert word_count("") == {}
""",
        """
import re

def word_count(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for word in re.findall(r"[A-Za-z0-9']+", text.lower()):
        out[word] = out.get(word, 0) + 1
    return out
""",
    ),
    _t(
        "flatten",
        2,
        "flatten",
        '''
def flatten(items: list) -> list:
    """Flatten arbitrarily nested lists: flatten([1, [2, [3]]]) == [1, 2, 3]."""
''',
        """
from solution import flatten

def test_nested():
    assert flatten([1, [2, [3, [4]]], 5]) == [1, 2, 3, 4, 5]

def test_empty_lists():
    assert flatten([[], [[]], 1]) == [1]

def test_strings_are_atoms():
    assert flatten(["ab", ["cd"]]) == ["ab", "cd"]
""",
        """
def flatten(items: list) -> list:
    out = []
    for item in items:
        if isinstance(item, list):
            out.extend(flatten(item))
        else:
            out.append(item)
    return out
""",
    ),
    _t(
        "unique_in_order",
        2,
        "unique_in_order",
        '''
def unique_in_order(xs: list) -> list:
    """The distinct elements of xs, each at its first position."""
''',
        """
from solution import unique_in_order

def test_basic():
    assert unique_in_order([3, 1, 3, 2, 1]) == [3, 1, 2]

def test_strings():
    assert unique_in_order(list("banana")) == ["b", "a", "n"]
""",
        """
def unique_in_order(xs: list) -> list:
    seen = set()
    out = []
    for x in xs:
        if x not in seen:
            seen.add(x)
            out.append(x)
    return out
""",
    ),
    _t(
        "title_case",
        2,
        "title_case",
        '''
def title_case(s: str) -> str:
    """Capitalise the first letter of every space-separated word and lower-case the rest; keep the spacing."""
''',
        """
from solution import title_case

def test_basic():
    assert title_case("hello wORLD") == "Hello World"

def test_spacing():
    assert title_case("  a  b ") == "  A  B "
""",
        """
def title_case(s: str) -> str:
    return " ".join(w[:1].upper() + w[1:].lower() for w in s.split(" "))
""",
    ),
    _t(
        "second_largest",
        2,
        "second_largest",
        '''
def second_largest(xs: list[int]) -> int | None:
    """The second largest distinct value in xs, or None when there is none."""
''',
        """
from solution import second_largest

def test_basic():
    assert second_largest([4, 1, 9, 7]) == 7

def test_duplicates():
    assert second_largest([5, 5, 3]) == 3

def test_none():
    assert second_largest([2, 2]) is None
    assert second_largest([]) is None
""",
        """
def second_largest(xs: list[int]) -> int | None:
    values = sorted(set(xs))
    return values[-2] if len(values) >= 2 else None
""",
    ),
    _t(
        "gcd",
        2,
        "gcd",
        '''
def gcd(a: int, b: int) -> int:
    """Greatest common divisor of a and b (non-negative result; gcd(0, 0) == 0)."""
''',
        """
from solution import gcd

def test_values():
    assert gcd(12, 18) == 6
    assert gcd(17, 5) == 1

def test_zero_and_sign():
    assert gcd(0, 9) == 9
    assert gcd(-12, 8) == 4
    assert gcd(0, 0) == 0
""",
        """
def gcd(a: int, b: int) -> int:
    a, b = abs(a), abs(b)
    while b:
        a, b = b, a % b
    return a
""",
    ),
    _t(
        "roman_to_int",
        3,
        "roman_to_int",
        '''
def roman_to_int(s: str) -> int:
    """The value of a Roman numeral such as "MCMXCIV"."""
''',
        """
from solution import roman_to_int

def test_simple():
    assert roman_to_int("III") == 3
    assert roman_to_int("LVIII") == 58

def test_subtractive():
    assert roman_to_int("IV") == 4
    assert roman_to_int("MCMXCIV") == 1994
""",
        """
def roman_to_int(s: str) -> int:
    values = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}
    total = 0
    for i, c in enumerate(s):
        v = values[c]
        if i + 1 < len(s) and values[s[i + 1]] > v:
            total -= v
        else:
            total += v
    return total
""",
    ),
    _t(
        "int_to_roman",
        3,
        "int_to_roman",
        '''
def int_to_roman(n: int) -> str:
    """The Roman numeral of 1 <= n <= 3999."""
''',
        """
from solution import int_to_roman

def test_values():
    assert int_to_roman(3) == "III"
    assert int_to_roman(9) == "IX"
    assert int_to_roman(1994) == "MCMXCIV"
    assert int_to_roman(3999) == "MMMCMXCIX"
""",
        """
def int_to_roman(n: int) -> str:
    pairs = [(1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"), (50, "L"), (40, "XL"),
             (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")]
    out = ""
    for value, sym in pairs:
        while n >= value:
            out += sym
            n -= value
    return out
""",
    ),
    _t(
        "balanced_brackets",
        3,
        "balanced_brackets",
        '''
def balanced_brackets(s: str) -> bool:
    """True when every (, [ and { in s is closed in the right order; other characters are ignored."""
''',
        """
from solution import balanced_brackets

def test_balanced():
    assert balanced_brackets("([]{})")
    assert balanced_brackets("a(b)c")

def test_unbalanced():
    assert not balanced_brackets("(]")
    assert not balanced_brackets("((")
    assert not balanced_brackets(")(")
""",
        """
def balanced_brackets(s: str) -> bool:
    pairs = {")": "(", "]": "[", "}": "{"}
    stack = []
    for c in s:
        if c in "([{":
            stack.append(c)
        elif c in pairs:
            if not stack or stack.pop() != pairs[c]:
                return False
    return not stack
""",
    ),
    _t(
        "run_length_encode",
        3,
        "run_length_encode",
        '''
def run_length_encode(s: str) -> str:
    """Run-length encoding: "aaabcc" -> "3a1b2c"."""
''',
        """
from solution import run_length_encode

def test_basic():
    assert run_length_encode("aaabcc") == "3a1b2c"

def test_long_run():
    assert run_length_encode("x" * 12) == "12x"

def test_empty():
    assert run_length_encode("") == ""
""",
        """
def run_length_encode(s: str) -> str:
    out = []
    i = 0
    while i < len(s):
        j = i
        while j < len(s) and s[j] == s[i]:
            j += 1
        out.append(f"{j - i}{s[i]}")
        i = j
    return "".join(out)
""",
    ),
    _t(
        "group_anagrams",
        3,
        "group_anagrams",
        '''
def group_anagrams(words: list[str]) -> list[list[str]]:
    """Group words that are anagrams of each other; each group sorted, groups sorted by their first word."""
''',
        """
from solution import group_anagrams

def test_groups():
    assert group_anagrams(["eat", "tea", "tan", "ate", "nat", "bat"]) == [
        ["ate", "eat", "tea"], ["bat"], ["nat", "tan"]]

def test_empty():
    assert group_anagrams([]) == []
""",
        """
def group_anagrams(words: list[str]) -> list[list[str]]:
    groups: dict[str, list[str]] = {}
    for w in words:
        groups.setdefault("".join(sorted(w)), []).append(w)
    return sorted((sorted(g) for g in groups.values()), key=lambda g: g[0])
""",
    ),
    _t(
        "merge_intervals",
        3,
        "merge_intervals",
        '''
def merge_intervals(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merge overlapping (or touching) closed intervals; the result is sorted."""
''',
        """
from solution import merge_intervals

def test_overlap():
    assert merge_intervals([(1, 3), (2, 6), (8, 10), (15, 18)]) == [(1, 6), (8, 10), (15, 18)]

def test_touching_and_unsorted():
    assert merge_intervals([(5, 7), (1, 5)]) == [(1, 7)]

def test_empty():
    assert merge_intervals([]) == []
""",
        """
def merge_intervals(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out
""",
    ),
    _t(
        "binary_search",
        3,
        "binary_search",
        '''
def binary_search(xs: list[int], target: int) -> int:
    """Index of target in the sorted list xs, or -1 when absent. Must be O(log n)."""
''',
        """
from solution import binary_search

def test_found():
    xs = list(range(0, 100, 3))
    assert all(binary_search(xs, x) == i for i, x in enumerate(xs))

def test_missing():
    assert binary_search([1, 3, 5], 4) == -1
    assert binary_search([], 1) == -1
""",
        """
def binary_search(xs: list[int], target: int) -> int:
    lo, hi = 0, len(xs) - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        if xs[mid] == target:
            return mid
        if xs[mid] < target:
            lo = mid + 1
        else:
            hi = mid - 1
    return -1
""",
    ),
    _t(
        "rotate_matrix",
        3,
        "rotate_matrix",
        '''
def rotate_matrix(m: list[list[int]]) -> list[list[int]]:
    """The matrix rotated 90 degrees clockwise (a new list; m is not changed)."""
''',
        """
from solution import rotate_matrix

def test_square():
    assert rotate_matrix([[1, 2], [3, 4]]) == [[3, 1], [4, 2]]

def test_rectangle():
    assert rotate_matrix([[1, 2, 3]]) == [[1], [2], [3]]

def test_unchanged_input():
    m = [[1, 2], [3, 4]]
    rotate_matrix(m)
    assert m == [[1, 2], [3, 4]]
""",
        """
def rotate_matrix(m: list[list[int]]) -> list[list[int]]:
    return [list(row) for row in zip(*m[::-1])]
""",
    ),
    _t(
        "longest_common_prefix",
        4,
        "longest_common_prefix",
        '''
def longest_common_prefix(words: list[str]) -> str:
    """The longest string that starts every word ("" for no words)."""
''',
        """
from solution import longest_common_prefix

def test_basic():
    assert longest_common_prefix(["flower", "flow", "flight"]) == "fl"

def test_none():
    assert longest_common_prefix(["dog", "car"]) == ""
    assert longest_common_prefix([]) == ""

def test_whole():
    assert longest_common_prefix(["same", "same"]) == "same"
""",
        """
def longest_common_prefix(words: list[str]) -> str:
    if not words:
        return ""
    prefix = words[0]
    for w in words[1:]:
        while not w.startswith(prefix):
            prefix = prefix[:-1]
    return prefix
""",
    ),
    _t(
        "lcs_length",
        4,
        "lcs_length",
        '''
def lcs_length(a: str, b: str) -> int:
    """Length of the longest common subsequence of a and b."""
''',
        """
from solution import lcs_length

def test_values():
    assert lcs_length("abcde", "ace") == 3
    assert lcs_length("abc", "def") == 0
    assert lcs_length("AGGTAB", "GXTXAYB") == 4

def test_long():
    assert lcs_length("a" * 300, "a" * 200) == 200
""",
        """
def lcs_length(a: str, b: str) -> int:
    prev = [0] * (len(b) + 1)
    for ca in a:
        cur = [0]
        for j, cb in enumerate(b):
            cur.append(prev[j] + 1 if ca == cb else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]
""",
    ),
    _t(
        "evaluate_rpn",
        4,
        "evaluate_rpn",
        '''
def evaluate_rpn(tokens: list[str]) -> int:
    """Evaluate reverse Polish notation with + - * and / (division truncates toward zero)."""
''',
        """
from solution import evaluate_rpn

def test_basic():
    assert evaluate_rpn(["2", "1", "+", "3", "*"]) == 9

def test_division_truncates():
    assert evaluate_rpn(["4", "13", "5", "/", "+"]) == 6
    assert evaluate_rpn(["-7", "2", "/"]) == -3
""",
        """
def evaluate_rpn(tokens: list[str]) -> int:
    stack: list[int] = []
    for t in tokens:
        if t in "+-*/" and len(t) == 1:
            b, a = stack.pop(), stack.pop()
            stack.append(a + b if t == "+" else a - b if t == "-" else a * b if t == "*" else int(a / b))
        else:
            stack.append(int(t))
    return stack[0]
""",
    ),
    _t(
        "top_k_frequent",
        4,
        "top_k_frequent",
        '''
def top_k_frequent(xs: list[int], k: int) -> list[int]:
    """The k most frequent values, most frequent first; ties broken by the smaller value."""
''',
        """
from solution import top_k_frequent

def test_basic():
    assert top_k_frequent([1, 1, 1, 2, 2, 3], 2) == [1, 2]

def test_ties():
    assert top_k_frequent([4, 4, 2, 2, 9], 2) == [2, 4]

def test_k_larger():
    assert top_k_frequent([5], 3) == [5]
""",
        """
from collections import Counter

def top_k_frequent(xs: list[int], k: int) -> list[int]:
    counts = Counter(xs)
    return [v for v, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:k]]
""",
    ),
    _t(
        "is_valid_sudoku",
        4,
        "is_valid_sudoku",
        '''
def is_valid_sudoku(board: list[list[int]]) -> bool:
    """True when no row, column or 3x3 box of the 9x9 board repeats a digit 1-9; 0 means empty."""
''',
        """
from solution import is_valid_sudoku

EMPTY = [[0] * 9 for _ in range(9)]

def test_empty():
    assert is_valid_sudoku(EMPTY)

def test_row_repeat():
    b = [row[:] for row in EMPTY]
    b[0][0] = b[0][8] = 5
    assert not is_valid_sudoku(b)

def test_box_repeat():
    b = [row[:] for row in EMPTY]
    b[0][0] = b[2][2] = 7
    assert not is_valid_sudoku(b)

def test_column_repeat():
    b = [row[:] for row in EMPTY]
    b[1][4] = b[7][4] = 3
    assert not is_valid_sudoku(b)
""",
        """
def is_valid_sudoku(board: list[list[int]]) -> bool:
    seen = set()
    for r in range(9):
        for c in range(9):
            v = board[r][c]
            if not v:
                continue
            keys = {("r", r, v), ("c", c, v), ("b", r // 3, c // 3, v)}
            if keys & seen:
                return False
            seen |= keys
    return True
""",
    ),
    _t(
        "parse_duration",
        4,
        "parse_duration",
        '''
def parse_duration(text: str) -> int:
    """Seconds in a duration like "1h30m", "45s" or "2h5s" (units h, m, s, each at most once, in that order).
    Raise ValueError for anything else."""
''',
        """
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
""",
        """
import re

def parse_duration(text: str) -> int:
    m = re.fullmatch(r"(?:(\\d+)h)?(?:(\\d+)m)?(?:(\\d+)s)?", text)
    if not text or m is None:
        raise ValueError(f"bad duration {text!r}")
    h, mi, s = (int(g) if g else 0 for g in m.groups())
    return h * 3600 + mi * 60 + s
""",
    ),
    _t(
        "edit_distance",
        5,
        "edit_distance",
        '''
def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance: fewest single-character insertions, deletions or substitutions from a to b."""
''',
        """
from solution import edit_distance

def test_values():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == 3
    assert edit_distance("flaw", "lawn") == 2
    assert edit_distance("same", "same") == 0
""",
        """
def edit_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]
""",
    ),
    _t(
        "topological_sort",
        5,
        "topological_sort",
        '''
def topological_sort(graph: dict[str, list[str]]) -> list[str]:
    """Order the nodes so each comes before the nodes it points to; among ready nodes pick the
    alphabetically smallest. Nodes may appear only as targets. Raise ValueError on a cycle."""
''',
        """
import pytest
from solution import topological_sort

def test_order():
    assert topological_sort({"b": ["c"], "a": ["c"], "c": ["d"]}) == ["a", "b", "c", "d"]

def test_cycle():
    with pytest.raises(ValueError):
        topological_sort({"a": ["b"], "b": ["a"]})

def test_empty():
    assert topological_sort({}) == []
""",
        """
import heapq

def topological_sort(graph: dict[str, list[str]]) -> list[str]:
    nodes = set(graph) | {t for ts in graph.values() for t in ts}
    indegree = {n: 0 for n in nodes}
    for ts in graph.values():
        for t in ts:
            indegree[t] += 1
    ready = [n for n, d in indegree.items() if d == 0]
    heapq.heapify(ready)
    out = []
    while ready:
        n = heapq.heappop(ready)
        out.append(n)
        for t in graph.get(n, []):
            indegree[t] -= 1
            if indegree[t] == 0:
                heapq.heappush(ready, t)
    if len(out) != len(nodes):
        raise ValueError("cycle")
    return out
""",
    ),
    _t(
        "lru_cache",
        5,
        "LRUCache",
        '''
class LRUCache:
    """A cache of at most `capacity` items; get(key) returns the value or -1; put evicts the least
    recently used key (a get counts as a use)."""

    def __init__(self, capacity: int):
        pass

    def get(self, key: int) -> int:
        pass

    def put(self, key: int, value: int) -> None:
        pass
''',
        """
from solution import LRUCache

def test_eviction():
    c = LRUCache(2)
    c.put(1, 1)
    c.put(2, 2)
    assert c.get(1) == 1
    c.put(3, 3)
    assert c.get(2) == -1
    assert c.get(3) == 3

def test_update():
    c = LRUCache(1)
    c.put(1, 1)
    c.put(1, 5)
    assert c.get(1) == 5
""",
        """
from collections import OrderedDict

class LRUCache:
    def __init__(self, capacity: int):
        self.capacity = capacity
        self.items: OrderedDict[int, int] = OrderedDict()

    def get(self, key: int) -> int:
        if key not in self.items:
            return -1
        self.items.move_to_end(key)
        return self.items[key]

    def put(self, key: int, value: int) -> None:
        self.items[key] = value
        self.items.move_to_end(key)
        if len(self.items) > self.capacity:
            self.items.popitem(last=False)
""",
    ),
    _t(
        "calculator",
        5,
        "calculate",
        '''
def calculate(expr: str) -> float:
    """Evaluate an arithmetic expression with + - * /, parentheses, unary minus and spaces,
    without eval(). Raise ValueError for malformed input."""
''',
        """
import pytest
from solution import calculate

def test_precedence():
    assert calculate("1 + 2 * 3") == 7
    assert calculate("(1 + 2) * 3") == 9

def test_unary_and_division():
    assert calculate("-4 / (2 - 4)") == 2
    assert calculate("2 * -3") == -6

def test_malformed():
    for bad in ["1 +", "(1", "2 ** 3", "abc"]:
        with pytest.raises(ValueError):
            calculate(bad)
""",
        """
import re

def calculate(expr: str) -> float:
    tokens = re.findall(r"\\d+\\.?\\d*|[-+*/()]|\\S", expr)
    pos = 0

    def peek():
        return tokens[pos] if pos < len(tokens) else None

    def take():
        nonlocal pos
        if pos >= len(tokens):
            raise ValueError("unexpected end")
        pos += 1
        return tokens[pos - 1]

    def atom():
        t = take()
        if t == "-":
            return -atom()
        if t == "(":
            v = add()
            if take() != ")":
                raise ValueError("expected )")
            return v
        try:
            return float(t)
        except ValueError:
            raise ValueError(f"bad token {t!r}") from None

    def mul():
        v = atom()
        while peek() in ("*", "/"):
            op = take()
            if peek() in ("*", "/"):
                raise ValueError("double operator")
            r = atom()
            v = v * r if op == "*" else v / r
        return v

    def add():
        v = mul()
        while peek() in ("+", "-"):
            op = take()
            r = mul()
            v = v + r if op == "+" else v - r
        return v

    result = add()
    if pos != len(tokens):
        raise ValueError("trailing input")
    return result
""",
    ),
    _t(
        "spiral_order",
        4,
        "spiral_order",
        '''
def spiral_order(m: list[list[int]]) -> list[int]:
    """The elements of the matrix in clockwise spiral order, starting top-left."""
''',
        """
from solution import spiral_order

def test_square():
    assert spiral_order([[1, 2, 3], [4, 5, 6], [7, 8, 9]]) == [1, 2, 3, 6, 9, 8, 7, 4, 5]

def test_rectangle():
    assert spiral_order([[1, 2, 3, 4], [5, 6, 7, 8]]) == [1, 2, 3, 4, 8, 7, 6, 5]

def test_empty():
    assert spiral_order([]) == []
""",
        """
def spiral_order(m: list[list[int]]) -> list[int]:
    out = []
    m = [row[:] for row in m]
    while m:
        out.extend(m.pop(0))
        m = [list(r) for r in zip(*m)][::-1]
    return out
""",
    ),
]

import re

def word_count(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for word in re.findall(r"[A-Za-z0-9']+", text.lower()):
        out[word] = out.get(word, 0) + 1
    return out

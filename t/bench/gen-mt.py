#!/usr/bin/env python3
"""Deterministic machine-translation-like test data for the BLEU benchmark.

usage: gen-mt.py N HYP REF [SEED]

Writes N segments, one a line, to HYP and REF: sentences of 8 to 45 tokens
drawn from a Zipf-distributed vocabulary of made-up words, with the things
13a tokenization has to handle (punctuation, numbers with decimal points,
commas and dashes, quotes, apostrophes, HTML entities, accented and
non-Latin words). Each reference is the hypothesis with edits (words
dropped, inserted, replaced, swapped), so BLEU lands in the range real
systems score. The same arguments always give the same files.
"""
import random
import sys


def vocabulary(rng, size):
    syllables = ["ka", "lo", "mi", "ne", "ta", "ri", "su", "ver", "an", "ing", "ed",
                 "tion", "pre", "con", "str", "ex", "al", "ou", "ch", "th", "ble", "ment"]
    words = set()
    while len(words) < size:
        words.add("".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))))
    words = sorted(words)
    rng.shuffle(words)
    # a few capitalized, accented and non-Latin ones, as real text has
    extra = ["Zürich", "café", "naïve", "Ελλάδα", "Москва", "東京", "São", "Ångström",
             "don't", "it's", "state-of-the-art", "e-mail", "U.S.", "Dr.", "AT&T"]
    return [w.capitalize() if rng.random() < 0.08 else w for w in words] + extra


def token(rng, vocab, weights):
    r = rng.random()
    if r < 0.84:
        return rng.choices(vocab, weights)[0]
    if r < 0.90:
        return rng.choice([",", ".", ";", ":", "?", "!", "(", ")", "\"", "'", "-", "--"])
    if r < 0.96:
        n = rng.randint(0, 4)
        return rng.choice([str(rng.randint(0, 10 ** (n + 1))),
                           "%d.%d" % (rng.randint(0, 99), rng.randint(0, 99)),
                           "%d,%03d" % (rng.randint(1, 99), rng.randint(0, 999)),
                           "%d-%d" % (rng.randint(1900, 2030), rng.randint(1900, 2030)),
                           "%d%%" % rng.randint(0, 100)])
    return rng.choice(["&amp;", "&quot;", "&lt;", "&gt;", "$5", "#3", "@user", "a/b", "x+y"])


def sentence(rng, vocab, weights):
    toks = [token(rng, vocab, weights) for _ in range(rng.randint(8, 45))]
    toks[0] = toks[0].capitalize()
    text = " ".join(toks)
    # punctuation attached as in detokenized text
    for p in [" ,", " .", " ;", " :", " ?", " !"]:
        text = text.replace(p, p[1:])
    return text + rng.choice([".", ".", ".", "?", "!", ""])


def edit(rng, text, vocab, weights):
    toks = text.split(" ")
    for _ in range(rng.randint(0, max(1, len(toks) // 3))):
        op = rng.random()
        i = rng.randrange(len(toks))
        if op < 0.3 and len(toks) > 1:
            del toks[i]
        elif op < 0.55:
            toks.insert(i, token(rng, vocab, weights))
        elif op < 0.85:
            toks[i] = token(rng, vocab, weights)
        elif i + 1 < len(toks):
            toks[i], toks[i + 1] = toks[i + 1], toks[i]
    return " ".join(toks)


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit("usage: gen-mt.py N HYP REF [SEED]")
    n = int(sys.argv[1])
    rng = random.Random(int(sys.argv[4]) if len(sys.argv) == 5 else 2024)
    vocab = vocabulary(rng, 6000)
    weights = [1.0 / (i + 1) for i in range(len(vocab))]
    with open(sys.argv[2], "w", encoding="utf-8") as hyp, \
            open(sys.argv[3], "w", encoding="utf-8") as ref:
        for _ in range(n):
            h = sentence(rng, vocab, weights)
            hyp.write(h + "\n")
            ref.write(edit(rng, h, vocab, weights) + "\n")


if __name__ == "__main__":
    main()

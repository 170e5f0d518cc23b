"""Caption metrics, re-implemented after the COCO caption toolkit (pycocoevalcap).

tokenise: lower-case; punctuation removed as the toolkit's PTB tokenizer post-filter does
          (. , ? ! : ; - -- ... ' " ` ( ) [ ] { } dropped; "'s" split off as its own token)
BLEU-1..4: corpus level (clipped n-gram counts summed over the corpus), brevity penalty with
          the closest reference length per hypothesis (ties -> shorter), as BleuScorer 'closest'
ROUGE-L:  LCS-based F with beta = 1.2, max precision / max recall over references, mean over images
CIDEr-D:  n = 1..4, tf-idf with document frequencies from the references of the evaluated split,
          Gaussian length penalty sigma = 6 (length = number of bigrams, as in the toolkit),
          clipped hypothesis tf (min(hyp, ref)), mean over references, x10, mean over images
METEOR:   NOT the Java METEOR 1.5: exact unigram matches only (no stem/synonym/paraphrase modules,
          no function-word weighting delta), with the METEOR 1.5 English parameters
          Fmean = PR/(alpha P + (1-alpha) R), alpha 0.85; penalty = gamma (chunks/matches)^beta, beta 0.2,
          gamma 0.6; best over references, mean over images. Reported as "METEOR (exact match only)";
          it is lower than or equal to what the Java tool gives (fewer matches) and not comparable to papers.
"""
from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from typing import Dict, List

_PUNCT = re.compile(r"[\.,\?!:;\-\"`\(\)\[\]\{\}]")


def tokenize(s: str) -> List[str]:
    s = s.lower().replace("\u2019", "'")
    s = re.sub(r"(\w)'(s|re|ve|ll|d|m|t)\b", r"\1 '\2", s)
    s = _PUNCT.sub(" ", s)
    toks = [t for t in s.split() if t not in ("'", "''")]
    return [t.strip("'") if t.startswith("'") and len(t) <= 1 else t for t in toks]


def ngrams(toks: List[str], n: int) -> Counter:
    return Counter(tuple(toks[i:i + n]) for i in range(len(toks) - n + 1))


def bleu(hyps: Dict[str, List[str]], refs: Dict[str, List[List[str]]], max_n: int = 4) -> List[float]:
    correct = [0] * max_n
    total = [0] * max_n
    hyp_len = ref_len = 0
    for k, h in hyps.items():
        rs = refs[k]
        hyp_len += len(h)
        ref_len += min((abs(len(r) - len(h)), len(r)) for r in rs)[1]
        for n in range(1, max_n + 1):
            hc = ngrams(h, n)
            maxref = Counter()
            for r in rs:
                for g, c in ngrams(r, n).items():
                    maxref[g] = max(maxref[g], c)
            correct[n - 1] += sum(min(c, maxref[g]) for g, c in hc.items())
            total[n - 1] += max(len(h) - n + 1, 0)
    tiny, small = 1e-15, 1e-9
    bp = 1.0 if hyp_len >= ref_len else math.exp(1 - ref_len / max(hyp_len, 1))
    out, logp = [], 0.0
    for n in range(max_n):
        logp += math.log((correct[n] + tiny) / (total[n] + small))
        out.append(bp * math.exp(logp / (n + 1)))
    return out


def _lcs(a, b) -> int:
    if len(a) < len(b):
        a, b = b, a
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(hyps, refs, beta: float = 1.2) -> float:
    scores = []
    for k, h in hyps.items():
        ps, rs = [], []
        for r in refs[k]:
            l = _lcs(h, r)
            ps.append(l / len(h) if h else 0.0)
            rs.append(l / len(r) if r else 0.0)
        p, r = max(ps), max(rs)
        scores.append(((1 + beta ** 2) * p * r) / (r + beta ** 2 * p) if p > 0 and r > 0 else 0.0)
    return sum(scores) / len(scores)


def cider_d(hyps, refs, n: int = 4, sigma: float = 6.0) -> float:
    keys = list(hyps)
    crefs = [[_counts(r, n) for r in refs[k]] for k in keys]
    df = defaultdict(float)
    for rs in crefs:
        for g in set(g for r in rs for g in r):
            df[g] += 1
    log_n = math.log(float(len(crefs)))

    def vec(cnts):
        v = [defaultdict(float) for _ in range(n)]
        norm = [0.0] * n
        length = 0
        for g, tf in cnts.items():
            i = len(g) - 1
            v[i][g] = float(tf) * (log_n - math.log(max(1.0, df[g])))
            norm[i] += v[i][g] ** 2
            if i == 1:
                length += tf
        return v, [math.sqrt(x) for x in norm], length

    scores = []
    for k, rs in zip(keys, crefs):
        vh, nh, lh = vec(_counts(hyps[k], n))
        acc = [0.0] * n
        for r in rs:
            vr, nr, lr = vec(r)
            delta = float(lh - lr)
            for i in range(n):
                val = sum(min(c, vr[i][g]) * vr[i][g] for g, c in vh[i].items())
                if nh[i] != 0 and nr[i] != 0:
                    val /= nh[i] * nr[i]
                acc[i] += val * math.exp(-(delta ** 2) / (2 * sigma ** 2))
        scores.append(sum(acc) / n / len(rs) * 10.0)
    return sum(scores) / len(scores)


def _counts(toks, n):
    c = Counter()
    for k in range(1, n + 1):
        c.update(ngrams(toks, k))
    return c


def meteor_exact(hyps, refs) -> float:
    def one(h, r):
        # greedy exact alignment, preferring matches that continue the previous chunk (the Java tool searches
    # for the alignment with the fewest chunks; greedy can give slightly more chunks)
        used = [False] * len(r)
        align = []
        for i, w in enumerate(h):
            cands = [j for j, x in enumerate(r) if x == w and not used[j]]
            if not cands:
                continue
            prev = align[-1][1] if align else None
            j = prev + 1 if prev is not None and prev + 1 in cands else cands[0]
            used[j] = True
            align.append((i, j))
        m = len(align)
        if m == 0:
            return 0.0
        p, rc = m / len(h), m / len(r)
        alpha, beta, gamma = 0.85, 0.2, 0.6
        fmean = p * rc / (alpha * p + (1 - alpha) * rc)
        chunks = 1 + sum(1 for a, b in zip(align, align[1:]) if not (b[0] == a[0] + 1 and b[1] == a[1] + 1))
        return fmean * (1 - gamma * (chunks / m) ** beta)

    return sum(max(one(h, r) for r in refs[k]) if h else 0.0 for k, h in hyps.items()) / len(hyps)


def caption_metrics(hyps: Dict[str, str], refs: Dict[str, List[str]]) -> Dict[str, float]:
    H = {k: tokenize(v) for k, v in hyps.items()}
    R = {k: [tokenize(r) for r in refs[k]] for k in hyps}
    b = bleu(H, R)
    return {"BLEU-1": b[0], "BLEU-2": b[1], "BLEU-3": b[2], "BLEU-4": b[3], "ROUGE-L": rouge_l(H, R),
            "CIDEr-D": cider_d(H, R), "METEOR (exact match only)": meteor_exact(H, R)}


def _selftest():
    refs = {"a": ["A plane is parked at the airport.", "Many planes are near a building."],
            "b": ["Green trees are around a pond.", "a pond is surrounded by trees"]}
    same = {k: v[0] for k, v in refs.items()}
    m = caption_metrics(same, refs)
    assert abs(m["BLEU-1"] - 1) < 1e-6 and abs(m["ROUGE-L"] - 1) < 1e-6, m
    assert tokenize("It's a plane, parked.") == ["it", "'s", "a", "plane", "parked"]
    return m


if __name__ == "__main__":
    print(_selftest())

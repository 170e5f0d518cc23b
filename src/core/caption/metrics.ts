/**
 * Caption metrics computed the way the COCO caption toolkit (pycocoevalcap) computes them;
 * a port of models/caption/metrics.py (the training side's re-implementation).
 *
 * - Tokenisation (`tokenizeCaption`): lower-case, "'s"/"'re"/... split off, the punctuation the
 *   toolkit's PTB-tokenizer post-filter drops is removed (an approximation of the Java PTB tokenizer,
 *   identical to metrics.py's `tokenize`).
 * - BLEU-1..4 (`bleu`): corpus level, as BleuScorer with option 'closest': clipped n-gram matches and
 *   guesses summed over the corpus, smoothed with tiny = 1e-15 / small = 1e-9, brevity penalty from the
 *   summed closest reference length per hypothesis (ties -> the shorter reference).
 * - ROUGE-L (`rougeL`): LCS F-measure with beta = 1.2 from the max precision and max recall over the
 *   references, mean over images.
 * - CIDEr-D (`ciderD`): n = 1..4 tf-idf vectors, idf = log(#images) - log(df) where df counts the images
 *   whose references contain the n-gram (so a one-image set scores 0), hypothesis tf clipped to the
 *   reference's, Gaussian length penalty sigma = 6 with length = number of bigrams (as the toolkit does),
 *   mean over n and over references, x10, mean over images.
 * - METEOR (`meteorExact`): NOT the Java METEOR 1.5 the toolkit runs. Exact unigram matches only (no
 *   stem / synonym / paraphrase modules) and no function-word weighting (delta), with the 1.5 English
 *   parameters alpha 0.85, beta 0.2, gamma 0.6: Fmean = PR / (alpha P + (1 - alpha) R),
 *   penalty = gamma (chunks / matches)^beta; greedy alignment; best reference per image, mean over images.
 *   Report it as "METEOR (exact match only)": it is not comparable to published METEOR scores and can
 *   be lower (fewer matches) or higher (no function-word down-weighting) than the Java tool's value.
 *
 * Plain TypeScript: runs in the browser, in workers and in Node.
 */

/** Per-image values keyed by image id: a Map or a plain object. */
export type Keyed<T> = ReadonlyMap<string, T> | Readonly<Record<string, T>>;
export type Tokens = readonly string[];

export interface CaptionScores {
  bleu: [number, number, number, number];
  rougeL: number;
  ciderD: number;
  meteorExact: number;
}

export interface CaptionPair {
  id: string;
  hypothesis: string;
  references: readonly string[];
}

// --- tokenisation -------------------------------------------------------------------------------

// Python's `\w` / `\b` are Unicode-aware (letters, numbers, underscore); JS's are ASCII-only.
const WORD = '[\\p{L}\\p{N}_]';
const CLITIC = new RegExp(`(${WORD})'(s|re|ve|ll|d|m|t)(?!${WORD})`, 'gu');
const PUNCT = /[.,?!:;\-"`()[\]{}]/g;
// Python's str.split() whitespace set (JS's \s differs: it has U+FEFF but lacks U+001C..U+001F, U+0085).
// eslint-disable-next-line no-control-regex -- Python counts U+001C..U+001F as whitespace
const PY_SPACE = /[\t\n\v\f\r \x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/;

/** metrics.py `tokenize`: "It's a plane, parked." -> ["it", "'s", "a", "plane", "parked"]. */
export function tokenizeCaption(s: string): string[] {
  const t = s.toLowerCase().replaceAll('\u2019', "'").replace(CLITIC, "$1 '$2").replace(PUNCT, ' ');
  // Lone quote tokens are what the PTB post-filter drops as punctuation.
  return t.split(PY_SPACE).filter((w) => w !== '' && w !== "'" && w !== "''");
}

// --- shared helpers -----------------------------------------------------------------------------

interface Item {
  hyp: Tokens;
  refs: readonly Tokens[];
}

function entries<T>(m: Keyed<T>): [string, T][] {
  return m instanceof Map ? [...m.entries()] : Object.entries(m as Record<string, T>);
}

function lookup<T>(m: Keyed<T>, k: string): T | undefined {
  if (m instanceof Map) return m.get(k);
  const r = m as Record<string, T>;
  return Object.hasOwn(r, k) ? r[k] : undefined;
}

/** Pairs each hypothesis with its references (hypothesis order); the toolkit needs >= 1 of each. */
function align(hyps: Keyed<Tokens>, refs: Keyed<readonly Tokens[]>): Item[] {
  const items = entries(hyps).map(([id, hyp]) => {
    const rs = lookup(refs, id);
    if (!rs || rs.length === 0) throw new Error(`caption metrics: no references for id "${id}"`);
    return { hyp, refs: rs };
  });
  if (items.length === 0) throw new Error('caption metrics: no hypotheses');
  return items;
}

// \u0001 cannot occur inside a whitespace-split token of a caption; n-grams of each order get their own map.
const SEP = '\u0001';

function ngramCounts(toks: Tokens, n: number): Map<string, number> {
  const c = new Map<string, number>();
  for (let i = 0; i + n <= toks.length; i++) {
    const g = toks.slice(i, i + n).join(SEP);
    c.set(g, (c.get(g) ?? 0) + 1);
  }
  return c;
}

/** Counts for orders 1..n: result[k] holds the (k+1)-grams. */
function allNgramCounts(toks: Tokens, n: number): Map<string, number>[] {
  return Array.from({ length: n }, (_, k) => ngramCounts(toks, k + 1));
}

const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

// --- BLEU ---------------------------------------------------------------------------------------

/** Corpus BLEU-1..maxN (BleuScorer.compute_score(option='closest')); returns [BLEU-1, ..., BLEU-maxN]. */
export function bleu(hyps: Keyed<Tokens>, refs: Keyed<readonly Tokens[]>, maxN = 4): number[] {
  const correct = new Array<number>(maxN).fill(0);
  const guess = new Array<number>(maxN).fill(0);
  let testLen = 0;
  let refLen = 0;
  for (const { hyp, refs: rs } of align(hyps, refs)) {
    testLen += hyp.length;
    // 'closest': the reference length nearest the hypothesis length, the shorter one on a tie.
    let best = rs[0].length;
    for (const r of rs) {
      const d = Math.abs(r.length - hyp.length);
      const bd = Math.abs(best - hyp.length);
      if (d < bd || (d === bd && r.length < best)) best = r.length;
    }
    refLen += best;
    for (let n = 1; n <= maxN; n++) {
      // Clip each hypothesis n-gram count by its max count in any single reference.
      const maxRef = new Map<string, number>();
      for (const r of rs) {
        for (const [g, c] of ngramCounts(r, n)) maxRef.set(g, Math.max(maxRef.get(g) ?? 0, c));
      }
      for (const [g, c] of ngramCounts(hyp, n)) correct[n - 1] += Math.min(c, maxRef.get(g) ?? 0);
      guess[n - 1] += Math.max(hyp.length - n + 1, 0);
    }
  }
  // The toolkit's smoothing constants: a zero match count gives ~0, not log(0).
  const tiny = 1e-15;
  const small = 1e-9;
  const out: number[] = [];
  let prod = 1;
  for (let k = 0; k < maxN; k++) {
    prod *= (correct[k] + tiny) / (guess[k] + small);
    out.push(prod ** (1 / (k + 1)));
  }
  // Brevity penalty exactly as the toolkit writes it (an all-empty corpus gets exp(-huge) = 0).
  const ratio = (testLen + tiny) / (refLen + small);
  if (ratio < 1) {
    const bp = Math.exp(1 - 1 / ratio);
    for (let k = 0; k < maxN; k++) out[k] *= bp;
  }
  return out;
}

// --- ROUGE-L ------------------------------------------------------------------------------------

function lcs(a: Tokens, b: Tokens): number {
  if (a.length < b.length) [a, b] = [b, a];
  let prev = new Array<number>(b.length + 1).fill(0);
  for (const x of a) {
    const cur = [0];
    for (let j = 0; j < b.length; j++) cur.push(x === b[j] ? prev[j] + 1 : Math.max(prev[j + 1], cur[j]));
    prev = cur;
  }
  return prev[b.length];
}

/** ROUGE-L F (beta 1.2), mean over images. */
export function rougeL(hyps: Keyed<Tokens>, refs: Keyed<readonly Tokens[]>, beta = 1.2): number {
  const b2 = beta ** 2;
  return mean(
    align(hyps, refs).map(({ hyp, refs: rs }) => {
      let p = 0;
      let r = 0;
      for (const ref of rs) {
        const l = lcs(hyp, ref);
        p = Math.max(p, hyp.length ? l / hyp.length : 0);
        r = Math.max(r, ref.length ? l / ref.length : 0);
      }
      return p > 0 && r > 0 ? ((1 + b2) * p * r) / (r + b2 * p) : 0;
    }),
  );
}

// --- CIDEr-D ------------------------------------------------------------------------------------

interface TfIdf {
  vec: Map<string, number>[];
  norm: number[];
  /** Number of bigrams: the toolkit's "length" for the Gaussian penalty. */
  length: number;
}

/** CIDEr-D (sigma 6, clipped, x10), idf from the references of this evaluated set; mean over images. */
export function ciderD(hyps: Keyed<Tokens>, refs: Keyed<readonly Tokens[]>, n = 4, sigma = 6): number {
  const items = align(hyps, refs);
  const crefs = items.map((it) => it.refs.map((r) => allNgramCounts(r, n)));
  // Document frequency: in how many images' reference sets each n-gram occurs.
  const df = Array.from({ length: n }, () => new Map<string, number>());
  for (const rs of crefs) {
    for (let k = 0; k < n; k++) {
      const seen = new Set<string>();
      for (const r of rs) for (const g of r[k].keys()) seen.add(g);
      for (const g of seen) df[k].set(g, (df[k].get(g) ?? 0) + 1);
    }
  }
  const logN = Math.log(items.length);

  const toVec = (cnts: Map<string, number>[]): TfIdf => {
    const vec = cnts.map(() => new Map<string, number>());
    const norm = new Array<number>(n).fill(0);
    let length = 0;
    cnts.forEach((ck, k) => {
      for (const [g, tf] of ck) {
        // Unseen n-grams get df 1 (idf = log N), as the toolkit's max(1.0, df).
        const w = tf * (logN - Math.log(Math.max(1, df[k].get(g) ?? 0)));
        vec[k].set(g, w);
        norm[k] += w * w;
        if (k === 1) length += tf;
      }
    });
    return { vec, norm: norm.map(Math.sqrt), length };
  };

  const scores = items.map((it, i) => {
    const h = toVec(allNgramCounts(it.hyp, n));
    const acc = new Array<number>(n).fill(0);
    for (const rc of crefs[i]) {
      const r = toVec(rc);
      const delta = h.length - r.length;
      const penalty = Math.exp(-(delta * delta) / (2 * sigma * sigma));
      for (let k = 0; k < n; k++) {
        let val = 0;
        // The "-D" clipping: a hypothesis n-gram weight counts at most as much as the reference's.
        for (const [g, w] of h.vec[k]) {
          const wr = r.vec[k].get(g) ?? 0;
          val += Math.min(w, wr) * wr;
        }
        if (h.norm[k] !== 0 && r.norm[k] !== 0) val /= h.norm[k] * r.norm[k];
        acc[k] += val * penalty;
      }
    }
    return (mean(acc) / it.refs.length) * 10;
  });
  return mean(scores);
}

// --- METEOR (exact match only) ------------------------------------------------------------------

function meteorOne(h: Tokens, r: Tokens): number {
  // Greedy exact alignment that prefers continuing the previous chunk (the Java tool searches for the
  // alignment with the fewest chunks; greedy can give slightly more).
  const used = new Array<boolean>(r.length).fill(false);
  const align: [number, number][] = [];
  h.forEach((w, i) => {
    let first = -1;
    for (let j = 0; j < r.length; j++) {
      if (r[j] === w && !used[j]) {
        first = j;
        break;
      }
    }
    if (first < 0) return;
    const last = align.at(-1);
    const next = last ? last[1] + 1 : -1;
    const j = last && next < r.length && r[next] === w && !used[next] ? next : first;
    used[j] = true;
    align.push([i, j]);
  });
  const m = align.length;
  if (m === 0) return 0;
  const p = m / h.length;
  const rc = m / r.length;
  const alpha = 0.85;
  const beta = 0.2;
  const gamma = 0.6;
  const fmean = (p * rc) / (alpha * p + (1 - alpha) * rc);
  let chunks = 1;
  for (let a = 1; a < m; a++) {
    if (!(align[a][0] === align[a - 1][0] + 1 && align[a][1] === align[a - 1][1] + 1)) chunks++;
  }
  return fmean * (1 - gamma * (chunks / m) ** beta);
}

/** METEOR with exact matches only (see the file comment): best reference per image, mean over images. */
export function meteorExact(hyps: Keyed<Tokens>, refs: Keyed<readonly Tokens[]>): number {
  return mean(
    align(hyps, refs).map(({ hyp, refs: rs }) =>
      hyp.length ? Math.max(...rs.map((r) => meteorOne(hyp, r))) : 0,
    ),
  );
}

// --- all together -------------------------------------------------------------------------------

/** All metrics on already tokenised captions (hypothesis per id, reference token lists per id). */
export function captionScores(hyps: Keyed<Tokens>, refs: Keyed<readonly Tokens[]>): CaptionScores {
  const [b1, b2, b3, b4] = bleu(hyps, refs, 4);
  return {
    bleu: [b1, b2, b3, b4],
    rougeL: rougeL(hyps, refs),
    ciderD: ciderD(hyps, refs),
    meteorExact: meteorExact(hyps, refs),
  };
}

/** Tokenises raw captions with `tokenizeCaption` and scores them; ids must be unique. */
export function scoreCaptions(pairs: readonly CaptionPair[]): CaptionScores {
  const hyps = new Map<string, Tokens>();
  const refs = new Map<string, Tokens[]>();
  for (const p of pairs) {
    if (hyps.has(p.id)) throw new Error(`caption metrics: duplicate id "${p.id}"`);
    hyps.set(p.id, tokenizeCaption(p.hypothesis));
    refs.set(p.id, p.references.map(tokenizeCaption));
  }
  return captionScores(hyps, refs);
}

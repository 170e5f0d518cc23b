/** VQA scoring helpers shared by the CLI and tests: answer normalisation and question types. */

/** As models/caption/evaluate.py `norm_answer`: lower case, '?' and '.' removed, spaces collapsed. */
export function normaliseAnswer(s: string): string {
  return s.toLowerCase().replace(/[?.]/g, ' ').split(/\s+/).filter(Boolean).join(' ');
}

export type QuestionType = 'count' | 'presence' | 'scene' | 'relation' | 'other';

const RELATION = /\b(next to|near|beside|between|around|surrounded by|in front of|behind|left of|right of|above|below|along|across|on the side of)\b/;

/** Question type from its wording (for files that do not label it, like RSIVQA's). */
export function questionType(question: string): QuestionType {
  const q = question.toLowerCase().trim();
  if (/^how many\b/.test(q)) return 'count';
  if (/\b(theme|kind of (area|scene|place)|type of (area|scene|place)|what (area|scene|place) is)\b/.test(q)) return 'scene';
  if (RELATION.test(q)) return 'relation';
  if (/^(is|are) (there|it|this)\b|^does\b|^do\b/.test(q)) return 'presence';
  return 'other';
}

/** One RSIVQA line "name:question?answer" (the answer may be empty for malformed lines). */
export function parseRsivqaLine(line: string): { image: string; question: string; answer: string } | null {
  const colon = line.indexOf(':');
  const mark = line.lastIndexOf('?');
  if (colon < 0 || mark < colon) return null;
  return { image: line.slice(0, colon).trim(), question: `${line.slice(colon + 1, mark).trim()}?`, answer: line.slice(mark + 1).trim() };
}

export interface AccuracyRow {
  key: string;
  n: number;
  correct: number;
  accuracy: number;
}

/** Accuracy per key, rows sorted by key, plus the overall row last. */
export function accuracyTable(results: readonly { key: string; correct: boolean }[]): AccuracyRow[] {
  const by = new Map<string, { n: number; correct: number }>();
  for (const r of results) {
    const row = by.get(r.key) ?? { n: 0, correct: 0 };
    row.n++;
    if (r.correct) row.correct++;
    by.set(r.key, row);
  }
  const rows = [...by.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([key, v]) => ({ key, ...v, accuracy: v.correct / v.n }));
  const total = results.filter((r) => r.correct).length;
  rows.push({ key: 'all', n: results.length, correct: total, accuracy: results.length ? total / results.length : 0 });
  return rows;
}

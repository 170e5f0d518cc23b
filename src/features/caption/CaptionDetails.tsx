import type { Route } from '../../core/caption/generate';
import type { CaptionJobResult, CaptionModelInfo } from '../../workers/captionWorkerApi';

const pct = (p: number) => `${(p * 100).toFixed(0)}%`;
const ms = (v: number) => (v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(0)} ms`);

/** What the router decided and wrote for each expert, each expert's part, and the timings. */
export function CaptionDetails({ route, result, info, instruction, backend }: { route: Route | null; result: CaptionJobResult | null; info: CaptionModelInfo | null; instruction: string; backend: string | null }) {
  if (!route) return null;
  const roleOf = (e: number) => info?.experts[e]?.role ?? `expert ${e}`;
  return (
    <details className="caption-details" data-testid="caption-details">
      <summary>
        Router: {route.task} ({pct(route.task === 'caption' ? route.taskProbs[0] : route.taskProbs[1])}) · experts {route.experts.map(roleOf).join(', ')}
      </summary>
      <table>
        <thead>
          <tr>
            <th>expert</th>
            <th>router</th>
            <th>prompt</th>
            <th>its part</th>
          </tr>
        </thead>
        <tbody>
          {route.expertProbs.map((p, e) => {
            const part = result?.parts.find((x) => x.expert === e);
            const ran = route.experts.includes(e);
            return (
              <tr key={e} className={ran ? '' : 'idle'} data-testid="expert-row" data-ran={ran}>
                <td>{roleOf(e)}</td>
                <td>{pct(p)}</td>
                <td>
                  {ran ? (
                    <code>
                      ⟨{roleOf(e)}⟩ {instruction} ⟨bos⟩
                    </code>
                  ) : (
                    'not run'
                  )}
                </td>
                <td>{part ? `${part.text || '—'} (weight ${pct(part.meanWeight)})` : ''}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {result && (
        <p className="hint" data-testid="caption-timings">
          {backend ?? ''} · {result.beams > 1 ? `beam search (${result.beams})` : 'greedy'} · image tower {result.encodeMs ? ms(result.encodeMs) : 'cached'} · router {ms(result.timings.routeMs)} · query {ms(result.timings.queryMs)} · first token {ms(result.timings.firstTokenMs)} ·{' '}
          {result.tokens.length} tokens at {result.timings.tokensPerSecond.toFixed(0)}/s · per expert step {result.timings.msPerExpertStep.map((v) => ms(v)).join(' / ')} · total {ms(result.totalMs)}
        </p>
      )}
      {result?.warnings.map((w) => (
        <p key={w} className="hint warning">
          {w}
        </p>
      ))}
    </details>
  );
}

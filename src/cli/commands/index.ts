/** Every CLI command. Later capabilities register theirs here (eval retrieval, eval detect, …). */
import { CommandRegistry } from '../registry';
import { bench } from './bench';
import { modelsRefresh, modelsVerify } from './models';
import { runModel } from './run';
import { evalRetrieval, evalSimilar, evalZeroShot } from './evalRetrieval';
import { evalDetect } from './evalDetect';
import { evalCaption, evalVqa } from './evalCaption';

export function createRegistry(): CommandRegistry {
  const registry = new CommandRegistry();
  registry.add(modelsVerify, modelsRefresh, runModel, bench, evalRetrieval, evalZeroShot, evalSimilar, evalDetect, evalCaption, evalVqa);
  registry.add({
    name: 'help',
    summary: 'show this list',
    async run() {
      process.stdout.write(registry.helpText() + '\n');
      return 0;
    },
  });
  return registry;
}

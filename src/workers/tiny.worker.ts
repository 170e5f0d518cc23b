/** Worker for the "tiny" family (runtime test models): the generic model worker as is. */
import { exposeModelWorker } from './modelWorkerHost';

exposeModelWorker();

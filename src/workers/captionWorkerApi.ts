import type { InstructionCheck, InstructionResult } from '../core/caption/pipeline';
import type { Route, Task } from '../core/caption/generate';
import type { StepOutput } from '../core/caption/expertDecoder';
import type { TensorData } from '../core/models/tensor';
import type { PixelWindow } from '../core/raster/types';
import type { ModelWorkerApi } from './modelWorkerApi';

/** A caption-expert worker: decoder experts with their key/value cache kept here. */
export interface ExpertWorkerApi extends ModelWorkerApi {
  /** Serves begin/step on `port` too (the caption worker drives the experts directly). */
  connect(port: MessagePort): Promise<void>;
  begin(modelId: string, queryFeatures: TensorData, promptTokens: number[], rows: number): Promise<StepOutput>;
  step(modelId: string, tokens: number[], parents?: number[]): Promise<StepOutput>;
}

export interface CaptionModelIds {
  imageEncoder: string;
  router: string;
  query: string;
  /** experts[e] = model id of expert e. */
  experts: string[];
}

export interface CaptionJob {
  jobId: string;
  file: Blob;
  fileName: string;
  /** Stable id of the image (its grid is cached per image and window). */
  imageKey: string;
  window: PixelWindow;
  instruction: string;
  task?: Task;
  sequential?: boolean;
  /** Beams for captions (1 = greedy). */
  beams?: number;
}

export interface CaptionUpdate {
  route?: Route;
  text?: string;
}

export interface CaptionJobResult extends InstructionResult {
  /** Image tower time (0 when the grid came from the cache). */
  encodeMs: number;
  totalMs: number;
}

export interface CaptionModelInfo {
  captionInstruction: string;
  experts: { index: number; role: string }[];
  maxPromptTokens: number;
}

/** The caption worker: image encoder grid, router and query module; drives the expert workers. */
export interface CaptionWorkerApi extends ModelWorkerApi {
  configure(ids: CaptionModelIds): Promise<CaptionModelInfo>;
  /** Expert `expert` is served by the expert worker at the other end of `port`. */
  attachExpert(expert: number, port: MessagePort): Promise<void>;
  check(instruction: string): Promise<InstructionCheck>;
  /** Captions or answers about one window; cancel(job.jobId) stops it after the current token. */
  runJob(job: CaptionJob, onUpdate?: (u: CaptionUpdate) => void): Promise<CaptionJobResult>;
  cancel(jobId: string): Promise<void>;
}

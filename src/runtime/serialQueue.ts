/**
 * Runs async tasks one at a time, in call order. ORT sessions must not run
 * concurrently, so every session owns one of these. A failed task does not
 * stop the queue.
 */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();
  private pending = 0;

  /** Number of tasks queued or running. */
  get size(): number {
    return this.pending;
  }

  run<T>(task: () => Promise<T> | T): Promise<T> {
    this.pending++;
    const result = this.tail.then(task);
    const settle = () => {
      this.pending--;
    };
    this.tail = result.then(settle, settle);
    return result;
  }
}

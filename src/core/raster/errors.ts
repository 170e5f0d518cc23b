/** Why an image cannot be opened or read; `message` is shown to the user as is. */
export type RasterErrorReason =
  | 'empty-file'
  | 'not-an-image'
  | 'unsupported-format'
  | 'unsupported-compression'
  | 'unsupported-layout'
  | 'truncated'
  | 'decode-failed'
  | 'too-large'
  | 'invalid-request';

export class RasterError extends Error {
  override readonly name = 'RasterError';

  constructor(
    readonly reason: RasterErrorReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

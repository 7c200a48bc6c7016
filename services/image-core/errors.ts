/**
 * The domain errors of the image core, in a leaf module (it imports nothing) so operations, the
 * pipeline parser and the catalogue can all throw them without importing each other.
 */

/** A pipeline that cannot run; the message names the step and parameter at fault. */
export class PipelineError extends Error {
  override readonly name = 'PipelineError';
}

export type InputErrorCode = 'unsupported_format' | 'corrupt_image' | 'too_many_pixels' | 'missing_file';

/** An input that cannot be decoded; the message names the file and what is wrong with it. */
export class InputError extends Error {
  override readonly name = 'InputError';
  constructor(
    readonly code: InputErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The result could not be written where it goes (no such folder, a full disk): not the input's fault,
 * so not an InputError even when it surfaces from the one libvips call that decodes and encodes.
 */
export class OutputError extends Error {
  override readonly name = 'OutputError';
}

/**
 * The domain errors of the image core, in a leaf module (it imports nothing) so operations, the
 * pipeline parser and the catalogue can all throw them without importing each other.
 */
/** A pipeline that cannot run; the message names the step and parameter at fault. */
export class PipelineError extends Error {
    name = 'PipelineError';
}
/** An input that cannot be decoded; the message names the file and what is wrong with it. */
export class InputError extends Error {
    code;
    name = 'InputError';
    constructor(code, message) {
        super(message);
        this.code = code;
    }
}
//# sourceMappingURL=errors.js.map
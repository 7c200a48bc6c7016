import { createParamField } from './param-field.js';
import { describeParams } from './params.js';

/**
 * The encoder's output options (metadata policy, progressive, chroma subsampling, lossless, effort),
 * one input per property of the JSON Schema that GET /v1/operations serves as `outputOptions`.
 * Only values that differ from the schema's defaults are sent, so an untouched form sends nothing.
 */
export function createOutputOptions({ container }) {
  let fields = [];

  function setSchema(schema) {
    fields = schema ? describeParams({ params: schema }).map((spec) => createParamField(spec, { onChange: () => {} })) : [];
    for (const field of fields) field.setContext('Output option: ');
    container.replaceChildren(...fields.map((field) => field.row));
    container.hidden = fields.length === 0;
  }

  /** { options } (undefined when every option is at its default) and the problems found, shown next to their inputs. */
  function collect() {
    const errors = [];
    const options = {};
    for (const field of fields) {
      const result = field.check();
      if (result.error) errors.push({ input: field.input, message: `Output: ${result.error}` });
      else if (result.value !== undefined && JSON.stringify(result.value) !== JSON.stringify(field.spec.schema.default)) options[field.spec.name] = result.value;
    }
    return { options: Object.keys(options).length ? options : undefined, errors };
  }

  return { setSchema, collect };
}

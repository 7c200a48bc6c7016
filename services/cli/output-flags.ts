import { InvalidArgumentError, Option } from 'commander';
import { outputFormat, quality } from '../protocol/api.js';
import { outputFormats } from '../protocol/output.js';
import { didYouMean } from '../shared/suggest.js';

/*
 * --format and --quality, for every command that encodes or asks for an encoding: checked by the API's
 * own schemas when the command line is read, so a typo is one clear error before any file is touched.
 */

export const formatOption = (defaultText: string) =>
  new Option('--format <format>', `${outputFormats.join(', ')} (default: ${defaultText})`).argParser((text) => {
    const parsed = outputFormat.safeParse(text);
    if (!parsed.success) throw new InvalidArgumentError(`it is not one of ${outputFormats.join(', ')}${didYouMean(text, outputFormats)}.`);
    return parsed.data;
  });

export const qualityOption = () =>
  new Option('--quality <q>', 'encoder quality 1-100').argParser((text) => {
    if (!quality.safeParse(Number(text)).success) throw new InvalidArgumentError('it must be an integer from 1 to 100.');
    return text;
  });

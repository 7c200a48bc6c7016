import type { Annotations } from './operation.js';
import { extractRect } from './pixel-move.js';
import { parsePipeline, PipelineError, type Step } from './pipeline.js';
import type { RawImage, Rect } from './raw-image.js';
import type { TileResult, TileTask } from './tile-task.js';

function parseSteps(steps: TileTask['steps']): Step[] {
  return steps.length === 0 ? [] : parsePipeline(steps);
}

function statisticsOf(step: Step) {
  if (!step.op.statistics) throw new PipelineError(`${step.op.name} is not a statistics operation`);
  return step.op.statistics;
}

/**
 * Runs one task of a stage (worker side): the stage's steps on the tile, keeping track of where the
 * tile lies as geometric steps move it, then cuts out the requested core. Depends on the task alone.
 */
export async function executeTileTask(task: TileTask): Promise<TileResult> {
  const steps = parseSteps(task.steps);
  const annotations: Annotations = {};
  let image: RawImage = task.tile;
  let region: Rect = task.source;
  let size = task.imageSize;
  for (const [index, step] of steps.entries()) {
    const move = step.op.tileable ? step.op.pixelMove?.(step.params) : undefined;
    if (index === 0 && task.histogram) {
      image = statisticsOf(step).applyWithHistogram(image, step.params, task.histogram);
    } else if (move && task.core) {
      image = await move.applyToTile(image, region, size);
      region = move.forward(region, size);
      size = move.outputSize(size);
    } else {
      image = await step.op.apply(image, step.params, annotations);
    }
  }
  const core = task.core ? extractRect(image, { ...task.core, x: task.core.x - region.x, y: task.core.y - region.y }) : image;
  const result: TileResult = { annotations };
  if (task.returnCore) result.core = core;
  if (task.histogramFor) {
    const [step] = parsePipeline([task.histogramFor]);
    result.histogram = statisticsOf(step).histogram(core, step.params);
  }
  return result;
}
